"""The network probes against local TLS servers and a real etcd, with certificates the panel's
PKI issues (pki.domain.kubeadm). Every server listens on 127.0.0.x; nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.health import probes
from pki.domain import x509 as px
from pki.domain.kubeadm import ClusterSpec, IssuedTree, NodeSpec, issue, plan

ADDRESS = "127.0.0.1"


def _tree() -> IssuedTree:
    cluster = ClusterSpec(key_algorithm="ECDSA-P256", nodes=(NodeSpec("cp-1", ADDRESS),))
    return issue(plan(cluster))


@pytest.fixture(scope="module")
def tree() -> IssuedTree:
    return _tree()


@pytest.fixture(scope="module")
def other_tree() -> IssuedTree:
    return _tree()


def _client(tree: IssuedTree, name: str = "apiserver-kubelet-client") -> probes.ClientIdentity:
    issued = tree.get(name)
    return probes.ClientIdentity(issued.cert_pem, issued.key_pem)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        failing = self.server.failing  # type: ignore[attr-defined]
        if self.path.startswith("/readyz") and failing:
            body = (
                "[+]ping ok\n[-]etcd failed: reason withheld\n[-]informer-sync failed\n"
                "readyz check failed\n"
            )
            self.send_response(500)
        else:
            body = "[+]ping ok\nlivez check passed\n" if "verbose" in self.path else "ok"
            self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def _serve(
    tmp: Path, cert_pem: bytes, key_pem: bytes, client_ca: bytes, address: str = ADDRESS
) -> tuple[http.server.ThreadingHTTPServer, int]:
    """An HTTPS server requiring a client certificate signed by ``client_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp / "server.pem").write_bytes(cert_pem + key_pem)
    context.load_cert_chain(tmp / "server.pem")
    context.load_verify_locations(cadata=client_ca.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer((address, 0), _Handler)
    server.failing = False  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def apiserver(tree: IssuedTree, tmp_path: Path) -> Iterator[tuple[Any, int]]:
    issued = tree.get("apiserver", "cp-1")
    server, port = _serve(tmp_path, issued.cert_pem, issued.key_pem, tree.cas["ca"].cert_pem)
    yield server, port
    server.shutdown()
    server.server_close()


def test_a_verified_apiserver_is_healthy_and_a_failed_readyz_names_its_checks(
    tree: IssuedTree, apiserver: tuple[Any, int]
) -> None:
    server, port = apiserver
    ca = tree.cas["ca"].cert_pem
    live = probes.apiserver(ADDRESS, port, "livez", ca_pem=ca, client=_client(tree), timeout=3)
    assert live.status == probes.HEALTHY, live
    assert live.latency_ms > 0
    server.failing = True
    ready = probes.apiserver(ADDRESS, port, "readyz", ca_pem=ca, client=_client(tree), timeout=3)
    assert ready.status == probes.UNHEALTHY
    assert ready.message == (
        "readyz failed (HTTP 500): [-]etcd failed: reason withheld; [-]informer-sync failed"
    )
    # Without a client certificate the server (which requires one) ends the handshake.
    refused = probes.apiserver(ADDRESS, port, "livez", ca_pem=ca, client=None, timeout=3)
    assert refused.status == probes.UNHEALTHY and "TLS" in refused.message


def test_certificates_of_another_ca_expired_or_without_the_address_are_named(
    tree: IssuedTree, other_tree: IssuedTree, tmp_path: Path
) -> None:
    ca = tree.cas["ca"].cert_pem
    client = _client(tree)
    # Signed by another cluster's CA.
    foreign = other_tree.get("apiserver", "cp-1")
    (tmp_path / "a").mkdir()
    server, port = _serve(tmp_path / "a", foreign.cert_pem, foreign.key_pem, ca)
    result = probes.apiserver(ADDRESS, port, "livez", ca_pem=ca, client=client, timeout=3)
    server.shutdown()
    assert result.status == probes.UNHEALTHY
    assert result.message == (
        "TLS: certificate verify failed: unable to get local issuer certificate"
    )
    # Expired: issued by the right CA a year and a month ago for one year.
    ca_issued = tree.cas["ca"]
    key = px.generate_private_key("ECDSA-P256")
    spec = px.CertSpec("apiserver", "ca", "kube-apiserver", ip_addresses=(ADDRESS,),
                       usages=("server",))  # fmt: skip
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    expired = px.sign_certificate(
        spec, key.public_key(), ca_issued.cert, px.load_private_key(ca_issued.key_pem), now=old
    )
    (tmp_path / "b").mkdir()
    server, port = _serve(tmp_path / "b", px.certificate_to_pem(expired),
                          px.private_key_to_pem(key), ca)  # fmt: skip
    result = probes.apiserver(ADDRESS, port, "readyz", ca_pem=ca, client=client, timeout=3)
    server.shutdown()
    assert result.message == "TLS: certificate verify failed: certificate has expired"
    # The right CA and valid, but dialled at an address its SANs do not hold.
    issued = tree.get("apiserver", "cp-1")
    (tmp_path / "c").mkdir()
    server, port = _serve(tmp_path / "c", issued.cert_pem, issued.key_pem, ca, "127.0.0.2")
    result = probes.apiserver("127.0.0.2", port, "livez", ca_pem=ca, client=client, timeout=3)
    server.shutdown()
    assert result.status == probes.UNHEALTHY
    assert result.message == (
        "TLS: certificate verify failed: IP address mismatch, certificate is not valid for "
        "'127.0.0.2'."
    )


def test_a_server_that_accepts_and_never_answers_costs_one_timeout(tree: IssuedTree) -> None:
    with socket.socket() as listener:
        listener.bind((ADDRESS, 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = probes.apiserver(ADDRESS, port, "livez", ca_pem=tree.cas["ca"].cert_pem,
                                  client=_client(tree), timeout=0.5)  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.status == probes.UNHEALTHY
    assert result.message == f"no answer from {ADDRESS}:{port} within 0.5 s"
    assert 0.45 < elapsed < 1.0, elapsed
    with socket.socket() as closed:
        closed.bind((ADDRESS, 0))
        port = closed.getsockname()[1]
    refused = probes.apiserver(ADDRESS, port, "livez", ca_pem=tree.cas["ca"].cert_pem,
                               client=None, timeout=1)  # fmt: skip
    assert refused.message == f"connection to {ADDRESS}:{port} refused"


def test_the_client_key_is_never_left_on_disk(tree: IssuedTree, apiserver: tuple[Any, int]) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    probes._context.cache_clear()
    probes.apiserver(ADDRESS, apiserver[1], "livez", ca_pem=tree.cas["ca"].cert_pem,
                     client=_client(tree), timeout=3)  # fmt: skip
    left = {n for n in set(os.listdir(tempfile.gettempdir())) - before if "clusterpanel-probe" in n}
    assert left == set()


# --------------------------------------------------------------------------- a real etcd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def etcd(tree: IssuedTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One etcd 3.4 member with the panel's etcd/server certificate; client certificates
    required."""
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed; see docs/TESTING.md (Debian etcd-server)")
    root = tmp_path_factory.mktemp("etcd")
    for name, node in (("etcd/server", "cp-1"), ("etcd/peer", "cp-1")):
        issued = tree.get(name, node)
        (root / f"{name[5:]}.crt").write_bytes(issued.cert_pem)
        (root / f"{name[5:]}.key").write_bytes(issued.key_pem)
    (root / "ca.crt").write_bytes(tree.cas["etcd/ca"].cert_pem)
    client, peer = _free_port(), _free_port()
    args = {
        "name": "cp-1",
        "data-dir": str(root / "data"),
        "listen-client-urls": f"https://{ADDRESS}:{client}",
        "advertise-client-urls": f"https://{ADDRESS}:{client}",
        "listen-peer-urls": f"https://{ADDRESS}:{peer}",
        "initial-advertise-peer-urls": f"https://{ADDRESS}:{peer}",
        "initial-cluster": f"cp-1=https://{ADDRESS}:{peer}",
        "trusted-ca-file": str(root / "ca.crt"),
        "cert-file": str(root / "server.crt"),
        "key-file": str(root / "server.key"),
        "peer-trusted-ca-file": str(root / "ca.crt"),
        "peer-cert-file": str(root / "peer.crt"),
        "peer-key-file": str(root / "peer.key"),
    }
    log = (root / "etcd.log").open("w")
    process = subprocess.Popen(
        ["etcd", *(f"--{k}={v}" for k, v in args.items()), "--client-cert-auth",
         "--peer-client-cert-auth"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        yield client
    finally:
        process.kill()
        process.wait(timeout=10)


def test_a_real_etcd_is_healthy_and_an_activated_nospace_alarm_makes_it_unhealthy(
    tree: IssuedTree, etcd: int
) -> None:
    ca = tree.cas["etcd/ca"].cert_pem
    client = _client(tree, "etcd/healthcheck-client")
    deadline = time.monotonic() + 20
    while True:
        health = probes.etcd_health(ADDRESS, etcd, ca_pem=ca, client=client, timeout=2)
        if health.status == probes.HEALTHY or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert health == probes.ProbeResult(probes.HEALTHY, health.latency_ms, "etcd health true")
    members = probes.etcd_members(ADDRESS, etcd, ca_pem=ca, client=client, timeout=2, expected=1)
    assert members.status == probes.HEALTHY and members.message == "1 members: cp-1"
    assert probes.etcd_alarms(ADDRESS, etcd, ca_pem=ca, client=client, timeout=2).message == (
        "no alarms"
    )
    # A member's id, to raise NOSPACE on it as etcd itself does when its quota is reached
    # (etcdctl has no command to raise an alarm; the Alarm RPC's ACTIVATE does).
    listed = probes.request(ADDRESS, etcd, "/v3/cluster/member/list", ca_pem=ca, client=client,
                            body=b"{}")  # fmt: skip
    member_id = json.loads(listed.body)["members"][0]["ID"]
    body = json.dumps({"action": "ACTIVATE", "memberID": member_id, "alarm": "NOSPACE"})
    raised = probes.request(ADDRESS, etcd, "/v3/maintenance/alarm", ca_pem=ca, client=client,
                            body=body.encode())  # fmt: skip
    assert raised.status == 200, raised.body
    alarms = probes.etcd_alarms(ADDRESS, etcd, ca_pem=ca, client=client, timeout=2)
    assert alarms.status == probes.UNHEALTHY
    assert alarms.message == f"etcd alarm raised: NOSPACE on member {member_id}"
    assert probes.etcd_health(ADDRESS, etcd, ca_pem=ca, client=client, timeout=2).status == (
        probes.UNHEALTHY
    )
    # The etcd CA refuses a client certificate of the cluster CA.
    wrong = probes.etcd_health(ADDRESS, etcd, ca_pem=ca, client=_client(tree), timeout=2)
    assert wrong.status == probes.UNHEALTHY and wrong.message.startswith("TLS")
