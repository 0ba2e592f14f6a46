"""The panel's health identity end to end: a health round issues it into the ledger and presents
it to local TLS servers that, like an API server, require a client certificate from the cluster
CA (on a control-plane node's address at 6443 and on the control-plane endpoint); it is renewed
when due and with the tree, and no bundle or download carries its key.

The servers stand in for kube-apiserver, which cannot run here: they answer /livez and
/readyz?verbose only for the user clusterpanel:health (the CN, as the API server reads it), 403
for anyone else, as RBAC would with the health role bound to that user alone."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from django.db import connection
from django.utils import timezone

from clusterpanel.models import AuditEvent
from nodes.health import services
from nodes.models import Cluster, ComponentHealth
from pki.domain import health_identity as rules
from pki.models import Certificate
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node
from tests.hosts import xdist_block


class _ApiServer(http.server.ThreadingHTTPServer):
    seen: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ApiServer

    def do_GET(self) -> None:
        peer = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        subject = x509.load_der_x509_certificate(peer).subject
        (cn,) = (str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME))
        self.server.seen.append(f"{cn} {self.path}")
        if cn == rules.USER and self.path in ("/livez?verbose", "/readyz?verbose"):
            self.send_response(200)
            body = b"[+]ping ok\n[+]etcd ok\nreadyz check passed\n"
        else:
            self.send_response(403)
            body = b'{"kind":"Status","reason":"Forbidden","code":403}'
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(tmp: Path, address: str, port: int, cert: bytes, key: bytes, ca: bytes) -> _ApiServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp / f"{address}.pem").write_bytes(cert + key)
    context.load_cert_chain(tmp / f"{address}.pem")
    context.load_verify_locations(cadata=ca.decode())
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no handshake
    server = _ApiServer((address, port), _Handler)
    server.seen = []
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[list[_ApiServer]]:
    started: list[_ApiServer] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_the_apiserver_checks_present_the_panels_health_identity(
    servers: list[_ApiServer], tmp_path: Path, settings: Any
) -> None:
    settings.CLUSTERPANEL_HEALTH_CHECK_TIMEOUT = 2
    # Addresses of this test run's block that no test host uses.
    block = xdist_block()
    node_address, endpoint_address = f"127.0.{block}.241", f"127.0.{block}.242"
    with socket.socket() as probe:
        probe.bind((endpoint_address, 0))
        endpoint_port = probe.getsockname()[1]
    cluster = make_cluster(
        "health-id",
        control_plane_endpoint=f"{endpoint_address}:{endpoint_port}",
        key_algorithm="ECDSA-P256",
    )
    cp = make_node(cluster, "control-plane", "cp-1", node_address, ssh_port=1)
    certificate_services.issue_missing(cluster, actor=SETUP)
    tree = certificate_services.active_tree(cluster)
    apiserver = tree[("apiserver", "cp-1")]
    ca = certificate_services.active_cas(cluster)["ca"].certificate_pem.encode()
    cert, key = apiserver.certificate_pem.encode(), apiserver.private_key_pem.encode()
    servers.append(_serve(tmp_path, node_address, 6443, cert, key, ca))
    servers.append(_serve(tmp_path, endpoint_address, endpoint_port, cert, key, ca))
    assert not Certificate.objects.filter(cluster=cluster, kind="panel").exists()

    services.run_round(cluster)

    current = {(h.component, h.node_id): h for h in ComponentHealth.objects.filter(cluster=cluster)}
    for component in (services.APISERVER_LIVEZ, services.APISERVER_READYZ):
        for node_id in (cp.pk, None):
            row = current[(component, node_id)]
            assert row.status == "healthy", (component, node_id, row.message)
    # Each server saw the health identity, and only it, on both endpoints.
    for server in servers:
        assert sorted(server.seen) == [
            "clusterpanel:health /livez?verbose",
            "clusterpanel:health /readyz?verbose",
        ]
    # The identity is a ledger row of its own kind, no node, its key stored encrypted.
    (row,) = Certificate.objects.filter(cluster=cluster, kind="panel")
    assert (row.name, row.node_id, row.node_name, row.common_name) == (
        "clusterpanel-health",
        None,
        "",
        "clusterpanel:health",
    )
    assert row.organizations == [] and row.usages == ["client"] and row.status == "active"
    assert row.authority.name == "ca"
    assert "PRIVATE KEY" in row.private_key_pem
    with connection.cursor() as cursor:
        table = Certificate._meta.db_table
        cursor.execute(f"SELECT private_key_pem FROM {table} WHERE id = %s", [row.pk])  # noqa: S608
        (raw,) = cursor.fetchone()
    assert raw and "PRIVATE KEY" not in raw
    event = AuditEvent.objects.get(action="pki.health_identity.issue")
    assert event.via == "schedule" and event.details["serial"] == row.serial

    # The next round reuses it.
    services.run_round(cluster)
    assert Certificate.objects.filter(cluster=cluster, kind="panel").count() == 1

    # Two thirds of its lifetime later it is issued anew, the old row superseded by it.
    due = row.not_before + (row.not_after - row.not_before) * 0.7
    renewed = certificate_services.health_identity(cluster, now=due)
    assert renewed is not None and renewed.pk != row.pk and renewed.serial != row.serial
    row.refresh_from_db()
    assert row.status == "superseded" and row.superseded_by_id == renewed.pk
    assert certificate_services.health_identity(cluster) == renewed  # current again
    # Renewing the whole tree renews it too.
    created = certificate_services.renew(cluster, actor=SETUP)
    assert "clusterpanel-health" in {c.name for c in created}
    (active,) = Certificate.objects.active().filter(cluster=cluster, kind="panel")
    assert active.pk not in (row.pk, renewed.pk) and active.common_name == rules.USER

    # No node's bundle carries it (neither its certificate nor its key).
    files = certificate_services.node_bundle_files(cluster, cp)
    for version in Certificate.objects.filter(cluster=cluster, kind="panel"):
        key_body = version.private_key_pem.strip().splitlines()[1].encode()
        cert_body = version.certificate_pem.strip().splitlines()[1].encode()
        for name, file in files.items():
            assert key_body not in file.content and cert_body not in file.content, name
    assert timezone.now() < active.not_after


@pytest.mark.django_db
def test_without_a_cluster_ca_there_is_no_health_identity() -> None:
    cluster: Cluster = make_cluster("no-ca")
    assert certificate_services.health_identity(cluster) is None
    assert not Certificate.objects.filter(cluster=cluster).exists()
