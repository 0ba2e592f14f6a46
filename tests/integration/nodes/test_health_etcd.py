"""A health round against a real three-member etcd (etcd 3.4, Debian's etcd-server) running with
the certificates of the panel's ledger (etcd/server and etcd/peer per node, client certificates
required both ways), the probes presenting etcd/healthcheck-client: healthy; an alarm etcd
raised itself (NOSPACE, a write past one member's backend quota) named by the alarm check;
members stopped, each reported with its reason (a refused connection for the stopped ones, etcd's
own answer for the one left without a leader).

The members listen on 2379/2380 of addresses of this run's block that no test host uses; the
nodes' SSH and apiserver ports are closed, so those checks fail fast as on nodes that are down."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodes.health import probes, services
from nodes.models import Cluster, ComponentHealth, Node
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node
from tests.hosts import xdist_block

# One member's backend quota: well above an empty backend, well below one large write.
QUOTA = 256 * 1024


def _start(node: Node, cluster: Cluster, root: Path, initial: str) -> subprocess.Popen[bytes]:
    tree = certificate_services.active_tree(cluster)
    pki = root / node.name
    pki.mkdir()
    for name in ("server", "peer"):
        row = tree[(f"etcd/{name}", node.name)]
        (pki / f"{name}.crt").write_text(row.certificate_pem)
        (pki / f"{name}.key").write_text(row.private_key_pem)
        (pki / f"{name}.key").chmod(0o600)
    etcd_ca = certificate_services.active_cas(cluster)["etcd/ca"]
    (pki / "ca.crt").write_text(etcd_ca.certificate_pem)
    address = str(node.address)
    flags = {
        "name": node.name,
        "data-dir": str(pki / "data"),
        "listen-client-urls": f"https://{address}:2379",
        "advertise-client-urls": f"https://{address}:2379",
        "listen-peer-urls": f"https://{address}:2380",
        "initial-advertise-peer-urls": f"https://{address}:2380",
        "initial-cluster": initial,
        "initial-cluster-state": "new",
        "initial-cluster-token": "health-test",
        "trusted-ca-file": str(pki / "ca.crt"),
        "cert-file": str(pki / "server.crt"),
        "key-file": str(pki / "server.key"),
        "peer-trusted-ca-file": str(pki / "ca.crt"),
        "peer-cert-file": str(pki / "peer.crt"),
        "peer-key-file": str(pki / "peer.key"),
    }
    if node.name == "cp-1":
        flags["quota-backend-bytes"] = str(QUOTA)
    args = [f"--{k}={v}" for k, v in flags.items()]
    log = (root / f"{node.name}.log").open("wb")
    return subprocess.Popen(
        ["etcd", *args, "--client-cert-auth", "--peer-client-cert-auth"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture
def etcd_members(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    running: dict[str, subprocess.Popen[bytes]] = {}
    yield running
    for process in running.values():
        process.kill()
    for process in running.values():
        process.wait(timeout=10)


def _current(cluster: Cluster) -> dict[tuple[str, int | None], ComponentHealth]:
    return {(h.component, h.node_id): h for h in ComponentHealth.objects.filter(cluster=cluster)}


@pytest.mark.django_db
def test_a_real_three_member_etcd_healthy_alarmed_and_with_members_stopped(
    etcd_members: dict[str, subprocess.Popen[bytes]], tmp_path: Path, settings: Any
) -> None:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed; see docs/TESTING.md (Debian etcd-server)")
    settings.CLUSTERPANEL_HEALTH_CHECK_TIMEOUT = 2
    block = xdist_block()
    cluster = make_cluster("etcd-health", key_algorithm="ECDSA-P256")
    nodes = [
        make_node(cluster, "control-plane", f"cp-{i}", f"127.0.{block}.{230 + i}", ssh_port=1)
        for i in (1, 2, 3)
    ]
    certificate_services.issue_missing(cluster, actor=SETUP)
    initial = ",".join(f"{n.name}=https://{n.address}:2380" for n in nodes)
    for node in nodes:
        etcd_members[node.name] = _start(node, cluster, tmp_path, initial)
    ca = certificate_services.active_cas(cluster)["etcd/ca"].certificate_pem.encode()
    row = certificate_services.active_tree(cluster)[("etcd/healthcheck-client", None)]
    client = probes.ClientIdentity(row.certificate_pem.encode(), row.private_key_pem.encode())

    def health(node: Node) -> probes.ProbeResult:
        return probes.etcd_health(str(node.address), 2379, ca_pem=ca, client=client, timeout=2)

    deadline = time.monotonic() + 30
    while not all(health(n).status == probes.HEALTHY for n in nodes):
        assert time.monotonic() < deadline, [
            (tmp_path / f"{n.name}.log").read_text() for n in nodes
        ]
        time.sleep(0.3)

    # Healthy: every member, the member list, no alarm.
    services.run_round(cluster)
    current = _current(cluster)
    for node in nodes:
        assert (current[("etcd", node.pk)].status, current[("etcd", node.pk)].message) == (
            "healthy",
            "etcd health true",
        )
    members = current[("etcd members", None)]
    assert (members.status, members.message) == ("healthy", "3 members: cp-1, cp-2, cp-3")
    assert (current[("etcd alarms", None)].status, current[("etcd alarms", None)].message) == (
        "healthy",
        "no alarms",
    )

    # One write larger than cp-1's quota: etcd refuses it and raises NOSPACE for cp-1 itself.
    value = base64.b64encode(b"x" * (QUOTA + 64 * 1024)).decode()
    body = json.dumps({"key": base64.b64encode(b"/big").decode(), "value": value}).encode()
    answer = probes.request(str(nodes[0].address), 2379, "/v3/kv/put", ca_pem=ca, client=client,
                            body=body, timeout=10)  # fmt: skip
    assert b"database space exceeded" in answer.body, answer.body
    listed = probes.request(str(nodes[0].address), 2379, "/v3/maintenance/status", ca_pem=ca,
                            client=client, body=b"{}")  # fmt: skip
    cp1_id = json.loads(listed.body)["header"]["member_id"]
    services.run_round(cluster)
    alarms = _current(cluster)[("etcd alarms", None)]
    assert alarms.status == "unhealthy"
    assert alarms.message == f"etcd alarm raised: NOSPACE on member {cp1_id}"
    # Every member answers /health false while an alarm is raised; etcd 3.4 gives no reason
    # there, so the probe asks the member's status, which names the alarm.
    for node in nodes:
        alarmed = _current(cluster)[("etcd", node.pk)]
        assert (alarmed.status, alarmed.message) == (
            "unhealthy",
            f"etcd health false (HTTP 503): memberID:{cp1_id} alarm:NOSPACE",
        )
    # Disarmed again (etcdctl alarm disarm, through the same gateway), the alarm check is clear.
    disarm = json.dumps({"action": "DEACTIVATE", "memberID": cp1_id, "alarm": "NOSPACE"})
    probes.request(str(nodes[1].address), 2379, "/v3/maintenance/alarm", ca_pem=ca,
                   client=client, body=disarm.encode())  # fmt: skip
    services.run_round(cluster)
    assert _current(cluster)[("etcd alarms", None)].message == "no alarms"

    # cp-3 stopped: refused there, the other two still healthy (a quorum of two).
    etcd_members["cp-3"].kill()
    etcd_members["cp-3"].wait(timeout=10)
    deadline = time.monotonic() + 30  # until the two elected a leader again, if it was cp-3
    while not all(health(n).status == probes.HEALTHY for n in nodes[:2]):
        assert time.monotonic() < deadline, "the two members left did not recover"
        time.sleep(0.3)
    services.run_round(cluster)
    current = _current(cluster)
    stopped = current[("etcd", nodes[2].pk)]
    assert (stopped.status, stopped.message) == (
        "unhealthy",
        f"connection to {nodes[2].address}:2379 refused",
    )
    for node in nodes[:2]:
        assert current[("etcd", node.pk)].status == "healthy"
    assert current[("etcd members", None)].message == "3 members: cp-1, cp-2, cp-3"
    # cp-2 stopped too: cp-1 is left without a leader, and says so.
    etcd_members["cp-2"].kill()
    etcd_members["cp-2"].wait(timeout=10)
    deadline = time.monotonic() + 30
    while health(nodes[0]).status == probes.HEALTHY:
        assert time.monotonic() < deadline, "cp-1 still healthy without a quorum"
        time.sleep(0.3)
    services.run_round(cluster)
    current = _current(cluster)
    alone = current[("etcd", nodes[0].pk)]
    assert (alone.status, alone.message) == (
        "unhealthy",
        "etcd health false (HTTP 503): etcdserver: no leader",
    )
    assert current[("etcd", nodes[1].pk)].message == (
        f"connection to {nodes[1].address}:2379 refused"
    )
    # Without a quorum the alarm list is not known; the reason is the first member's.
    alarms = current[("etcd alarms", None)]
    assert alarms.status == "unknown" and str(nodes[0].address) in alarms.message
