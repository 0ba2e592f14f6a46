"""The engine end to end: facts and preflight jobs launched like the API launches them, run by a
real Celery worker over real SSH to real sshd test hosts (tests/hosts.py).

kubeadm, kubelet and a container runtime cannot run here; where a test needs a slow or
hanging host command, a recording stand-in for ``kubeadm`` is put on that host's PATH
(``/usr/local/sbin``), which the facts script calls as ``kubeadm version``.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import cancel_job, launch_job, retry_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from tests import hosts, services
from tests.factories import make_cluster, make_node, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator() -> Actor:
    return Actor.for_command(make_user("engine-operator", "operator"))


MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]


def _nodes_for(cluster: Cluster, test_hosts: Sequence[hosts.TestHost], key: str) -> list[Node]:
    """One node per host, named like it, its host key pinned, logging in as root with ``key``."""
    made = []
    for host in test_hosts:
        node = make_node(cluster, "control-plane", host.name, host.address, ssh_private_key=key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        made.append(node)
    return made


def _run(
    operator: Actor, cluster: Cluster, kind: str, nodes: Sequence[Node] | None = None, **params: Any
) -> Job:
    job = launch_job(
        operator, cluster, kind, None if nodes is None else [n.pk for n in nodes], params
    )
    return _wait(job)


def _wait(job: Job, timeout: float = 60) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, timeout, f"{job} to end (is {job.status})")
    return job


def _stand_in(host: hosts.TestHost, name: str, script: str) -> None:
    """A stand-in command first on the host's PATH (its own /usr/local/sbin)."""
    path = host.bind_dir("/usr/local/sbin") / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def _checks(job: Job) -> dict[tuple[str | None, str], tuple[str, str]]:
    found = {}
    for step in job.steps.all():
        for check in (step.result or {}).get("checks", []):
            found[(check["node"], check["name"])] = (check["status"], check["message"])
    return found


def test_facts_over_three_hosts_store_each_hosts_own_hostname_and_product_uuid(
    jobs_worker: str, operator: Actor, test_hosts: list[hosts.TestHost], ssh_client_key: str
) -> None:
    cluster = make_cluster("facts")
    chosen = test_hosts[:3]
    nodes = _nodes_for(cluster, chosen, ssh_client_key)
    job = _run(operator, cluster, "facts")
    assert job.status == "succeeded", job.explanation
    assert job.explanation
    for node, host in zip(nodes, chosen, strict=True):
        node.refresh_from_db()
        assert node.facts["hostname"] == host.hostname
        assert node.facts["product_uuid"] == host.product_uuid
        assert set(node.facts["mac_addresses"].values()) == set(host.macs)
        assert node.facts["cpus"] >= 1 and node.facts["memory_bytes"] > 0
        assert node.facts_read_at is not None
    assert len({n.facts["product_uuid"] for n in Node.objects.filter(cluster=cluster)}) == 3


def test_preflight_gives_per_node_results_and_catches_duplicates_and_a_subnet_holding_a_host(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    twins = make_test_hosts(
        [
            hosts.HostSpec("pf-a", hostname="twin"),
            hosts.HostSpec("pf-b", hostname="twin"),
            hosts.HostSpec("pf-c"),
        ]
    )
    # The hosts share this machine's network: an address of it inside the pod subnet is an
    # address of every node inside it.
    address = next(
        a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        if ipaddress.ip_address(a).version == 4 and not ipaddress.ip_address(a).is_loopback
    )  # fmt: skip
    pod_subnet = str(ipaddress.ip_network(f"{address}/24", strict=False))
    cluster = make_cluster("pf", pod_subnet=pod_subnet)
    _nodes_for(cluster, twins, ssh_client_key)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 10259))  # kube-scheduler's port, taken on "every host"
    busy.listen()
    try:
        job = _run(operator, cluster, "preflight")
    finally:
        busy.close()
    assert job.status == "failed"
    assert job.explanation.startswith("preflight failed")
    checks = _checks(job)
    assert checks[(None, "unique-hostname")][0] == "fail"
    assert "pf-a" in checks[(None, "unique-hostname")][1]
    assert "pf-b" in checks[(None, "unique-hostname")][1]
    assert checks[(None, "unique-product-uuid")][0] == "pass"
    assert checks[(None, "pod-subnet-nodes")][0] in ("warn", "fail")
    assert address in checks[(None, "pod-subnet-nodes")][1]
    for name in ("pf-a", "pf-b", "pf-c"):
        assert checks[(name, "port-10259")][0] == "fail"
        assert checks[(name, "port-6443")][0] == "pass"
    swapped_on = len(Path("/proc/swaps").read_text().splitlines()) > 1
    assert checks[("pf-c", "swap")][0] == ("fail" if swapped_on else "pass")
    assert "10259" in job.explanation or "twin" in job.explanation


# What these hosts cannot offer a kubelet (they share this machine's kernel and have no
# container runtime), as the bootstrap tests name it.
HOST_LIMITS = (
    "cri-socket,cgroup-driver,ip_forward,br_netfilter,overlay,bridge-nf-call-iptables,"
    "bridge-nf-call-ip6tables,swap,cpus,memory,time,port-10250"
)


def test_preflight_ignores_the_failed_checks_named_and_shows_them_as_ignored_warnings(
    jobs_worker: str, operator: Actor, test_hosts: list[hosts.TestHost], ssh_client_key: str
) -> None:
    host = test_hosts[0]
    # A pod subnet that holds the node's own address: a failure on any host, every time.
    pod_subnet = str(ipaddress.ip_network(f"{host.address}/24", strict=False))
    cluster = make_cluster("pf-ignore", pod_subnet=pod_subnet)
    node = make_node(cluster, "worker", host.name, host.address, ssh_private_key=ssh_client_key)
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()

    # Not named: the job fails on it as before, the check shown failed.
    failed = _run(operator, cluster, "preflight", ignore_preflight_errors=HOST_LIMITS)
    assert failed.status == "failed", failed.explanation
    assert f"the pod subnet {pod_subnet} contains the address {host.address}" in (
        failed.explanation
    )
    assert _checks(failed)[(None, "pod-subnet-nodes")][0] == "fail"

    # Named: it still runs and is shown, as a warning marked ignored; the job succeeds.
    ignored = f"{HOST_LIMITS},pod-subnet-nodes"
    passed = _run(operator, cluster, "preflight", ignore_preflight_errors=ignored)
    assert passed.status == "succeeded", passed.explanation
    assert "ignored as asked: " in passed.explanation
    assert "pod-subnet-nodes" in passed.explanation.split("ignored as asked: ", 1)[1]
    status, message = _checks(passed)[(None, "pod-subnet-nodes")]
    assert status == "warn"
    assert message == f"the pod subnet {pod_subnet} contains the address {host.address} of " + (
        f"{host.name} (ignored)"
    )
    client = APIClient()
    client.force_authenticate(operator.user)
    detail = client.get(f"/api/v1/jobs/{passed.pk}/").json()
    shown = {(c["node"], c["name"]): c for c in detail["checks"]}
    assert shown[(None, "pod-subnet-nodes")]["ignored"] is True
    assert shown[(None, "pod-subnet-nodes")]["status"] == "warn"
    # A check that passed is not marked, named or not; none is left failed.
    assert shown[(None, "subnet-overlap")] == {
        "node": None,
        "name": "subnet-overlap",
        "status": "pass",
        "message": "the pod and service subnets are apart",
        "ignored": False,
    }
    assert all(c["status"] != "fail" for c in detail["checks"])
    assert all(c["message"].endswith(" (ignored)") for c in detail["checks"] if c["ignored"])


def test_a_changed_host_key_stops_the_job_before_any_login_and_marks_the_node(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    (host,) = make_test_hosts([hosts.HostSpec("rekeyed")])
    cluster = make_cluster("rekey")
    (node,) = _nodes_for(cluster, [host], ssh_client_key)
    pinned = host.host_key_fingerprint
    presented = host.swap_host_key()
    logins = host.accepted_logins()
    job = _run(operator, cluster, "facts")
    assert job.status == "failed"
    assert pinned in job.explanation and presented in job.explanation
    assert host.accepted_logins() == logins
    assert host.received_commands() == []
    node.refresh_from_db()
    assert node.host_key_state == "changed"
    assert node.presented_host_key_fingerprint == presented


def test_an_unknown_host_key_is_refused_until_approved(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    (host,) = make_test_hosts([hosts.HostSpec("stranger")])
    cluster = make_cluster("stranger")
    node = make_node(cluster, "worker", host.name, host.address, ssh_private_key=ssh_client_key)
    job = _run(operator, cluster, "facts")
    assert job.status == "failed"
    assert host.host_key_fingerprint in job.explanation
    assert host.accepted_logins() == 0
    from nodes.host_keys import approve_host_key, scan_host_key

    scan_host_key(operator, node)
    approve_host_key(operator, node, host.host_key_fingerprint)
    assert _run(operator, cluster, "facts").status == "succeeded"


def test_a_host_stopped_mid_job_fails_its_step_and_the_others_finish(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    started = make_test_hosts([hosts.HostSpec(f"stop-{i}") for i in range(3)])
    victim = started[1]
    _stand_in(victim, "kubeadm", "sleep 30\n")
    cluster = make_cluster("stopping")
    _nodes_for(cluster, started, ssh_client_key)
    job = launch_job(operator, cluster, "facts", None, {})
    services.wait_for(
        lambda: any("kubeadm" in c for c in victim.received_commands())
        or any("facts" in c for c in victim.received_commands()),
        30, "the victim's facts step to start",
    )  # fmt: skip
    time.sleep(0.5)
    victim.stop()
    job = _wait(job)
    assert job.status == "failed"
    assert victim.name in job.explanation
    statuses = {s.node_name: s.status for s in job.steps.all()}
    assert statuses == {"stop-0": "succeeded", "stop-1": "failed", "stop-2": "succeeded"}

    # Retry resumes at the failed step: the host is back, the succeeded steps are not re-run.
    victim.start()
    (victim.bind_dir("/usr/local/sbin") / "kubeadm").unlink()
    before = {h.name: len(h.received_commands()) for h in started}
    retried = _wait(retry_job(operator, job))
    assert retried.status == "succeeded", retried.explanation
    after = {h.name: len(h.received_commands()) for h in started}
    assert after["stop-0"] == before["stop-0"] and after["stop-2"] == before["stop-2"]
    assert after["stop-1"] > before["stop-1"]
    assert {s.node_name: s.status for s in retried.steps.all()}["stop-0"] == "skipped"


def _pids_of(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_cancel_mid_step_kills_the_remote_process_within_five_seconds(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    (host,) = make_test_hosts([hosts.HostSpec("cancelled")])
    marker = "1000.4242"
    _stand_in(host, "kubeadm", f"sleep {marker}\n")
    cluster = make_cluster("cancel")
    _nodes_for(cluster, [host], ssh_client_key)
    job = launch_job(operator, cluster, "facts", None, {})
    services.wait_for(lambda: bool(_pids_of(marker)), 30, "the remote sleep to start")
    cancel_job(operator, job)
    gone_by = time.monotonic() + 5
    while _pids_of(marker) and time.monotonic() < gone_by:
        time.sleep(0.1)
    assert _pids_of(marker) == []
    job = _wait(job, timeout=30)
    assert job.status == "cancelled"
    assert job.explanation
