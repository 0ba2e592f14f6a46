"""upgrade 1.31 → 1.32 end to end: launched like the API launches it, run by a real Celery worker
over real SSH on four of the shared sshd test hosts (tests/hosts.py): two control-plane nodes (the
stacked etcd members) and two workers.

kubeadm, kubectl, the package tools (apt-get, apt-cache, apt-mark, dpkg-query), curl and
systemctl are recording stand-ins (tests/standins); etcdctl is a recording stand-in written here
(it answers health and makes a snapshot file): no cluster, kubelet or etcd runs. The kubectl
stand-in on the first control-plane node answers for every node Ready with the kubelet version
the package stand-ins installed on that node's host, and fails the drain of a chosen node as a
PodDisruptionBudget makes it. The tests assert the exact command lines and their order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job, retry_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from pki.services.certificates import issue_missing
from tests import hosts, services, standins
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

TOOLS = ["kubeadm", "kubectl", "apt-get", "apt-cache", "apt-mark", "dpkg-query", "curl"]
ETCDCTL = """#!/bin/sh
# Recording stand-in for etcdctl (tests/integration/nodes/test_upgrade_job.py).
. "$(dirname "$0")/.standin-lib"
case "$*" in
  *"endpoint health"*) echo '[{"endpoint":"https://a:2379","health":true},'\
'{"endpoint":"https://b:2379","health":true}]' ;;
  *"snapshot save"*) for a in "$@"; do f=$a; done; echo snapshot > "$f" ;;
  *"snapshot status"*) echo '{"hash":1,"revision":7,"totalKey":3,"totalSize":9}' ;;
esac
exit 0
"""


@pytest.fixture
def cluster_hosts(test_hosts: list[hosts.TestHost]) -> Iterator[list[hosts.TestHost]]:
    """node-1 … node-4 with kubeadm, kubelet, kubectl 1.31.2 installed and held, 1.32.0 in the
    repository; removed again afterwards (the shared hosts serve other tests)."""
    chosen = test_hosts[:4]
    for host in chosen:
        standins.install_standins(host, TOOLS)
        standins.install_recorder(host, "systemctl")
        (host.bind_dir("/usr/local/sbin") / "etcdctl").write_text(ETCDCTL)
        (host.bind_dir("/usr/local/sbin") / "etcdctl").chmod(0o755)
        state = standins.state(host)
        for sub in ("pkg", "hold", "repo"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        for package in ("kubeadm", "kubelet", "kubectl"):
            (state / "pkg" / package).write_text("1.31.2-1.1\n")
            (state / "hold" / package).write_text("")
            (state / "repo" / package).write_text("1.31.2-1.1\n1.32.0-1.1\n")
        standins.clear_calls(host)
    nodes_dir = standins.state(chosen[0]) / "kubectl-nodes"
    nodes_dir.mkdir(exist_ok=True)
    for host in chosen:
        (nodes_dir / host.name).write_text(str(standins.state(host)))
    (chosen[0].bind_dir("/etc/kubernetes") / "admin.conf").write_text("stand-in admin.conf\n")
    yield chosen
    for host in chosen:
        state = standins.state(host)
        for sub in ("pkg", "hold", "repo", "kubectl-nodes", "kubectl-drain-blocked"):
            for path in (state / sub).glob("*"):
                path.unlink()
        for name in ("etcdctl", "systemctl"):
            (host.bind_dir("/usr/local/sbin") / name).unlink(missing_ok=True)
        for path in host.bind_dir("/etc/kubernetes").glob("*"):
            if path.is_file():
                path.unlink()


def _wait(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 240, f"{job} to end")
    return job


def _kubectl(host: hosts.TestHost) -> list[list[str]]:
    """kubectl's cordon, drain and uncordon calls: (verb, node)."""
    return [
        c[3:5]
        for c in standins.calls(host, "kubectl")
        if c[3:4] in (["cordon"], ["drain"], ["uncordon"])
    ]


def test_upgrade_checks_first_snapshots_first_drains_each_node_and_resumes_at_a_blocked_drain(
    jobs_worker: str, cluster_hosts: list[hosts.TestHost], ssh_client_key: str
) -> None:
    first, second, worker_a, worker_b = cluster_hosts
    operator = Actor.for_command(make_user("upgrade-operator", "operator"))
    cluster = make_cluster("upgrade", kubernetes_version="v1.31.2")
    for host, role in zip(
        cluster_hosts, ["control-plane", "control-plane", "worker", "worker"], strict=True
    ):
        node = make_node(cluster, role, host.name, host.address, ssh_private_key=ssh_client_key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.facts = {"os_id": "ubuntu", "hostname": host.hostname}
        node.joined_at, node.kubelet_version = timezone.now(), "v1.31.2"
        node.save()
    issue_missing(cluster, actor=SETUP)

    # The skew policy refuses before anything runs, naming the version.
    for version, message in (
        ("v1.33.0", "skips a minor version"),
        ("v1.30.0", "downgrade"),
        ("1.31.2", "nothing to upgrade"),
    ):
        with pytest.raises(InputError, match=message) as refused:
            launch_job(operator, cluster, "upgrade", None, {"version": version})
        assert refused.value.field == "version"
    assert not Job.objects.filter(cluster=cluster).exists()

    # The second worker's drain is blocked by a PodDisruptionBudget.
    blocked = standins.state(first) / "kubectl-drain-blocked"
    blocked.mkdir(exist_ok=True)
    (blocked / worker_b.name).write_text("shop/web-0\nshop/web-1\n")
    params = {"version": "1.32.0", "drain_timeout": 5, "drain_retries": 0}
    job = _wait(launch_job(operator, cluster, "upgrade", None, params))
    assert job.status == "failed", job.explanation
    assert (
        f"the drain of {worker_b.name} is blocked by a PodDisruptionBudget: shop/web-0, "
        f"shop/web-1 cannot be evicted; {worker_b.name} uncordoned"
    ) in job.explanation
    names = [h.name for h in cluster_hosts]
    expected = [[verb, n] for n in names[:3] for verb in ("cordon", "drain", "uncordon")]
    assert _kubectl(first) == [
        *expected,
        ["cordon", names[3]],
        ["drain", names[3]],
        ["uncordon", names[3]],
    ]

    # kubeadm: upgrade apply on the first node, upgrade node on the others, never forced.
    kubeadm = {h.name: [c[1:] for c in standins.calls(h, "kubeadm")] for h in cluster_hosts}
    assert kubeadm[first.name] == [
        ["version", "-o", "short"],
        ["upgrade", "plan", "v1.32.0"],
        ["upgrade", "apply", "v1.32.0", "--yes"],
    ]
    assert kubeadm[second.name] == [["version", "-o", "short"], ["upgrade", "node"]]
    assert kubeadm[worker_a.name] == [["upgrade", "node"]]
    assert kubeadm[worker_b.name] == [["upgrade", "node"]]

    # The snapshot and the copy of /etc/kubernetes before any package changed.
    calls = standins.calls(first)
    save = next(i for i, c in enumerate(calls) if c[0] == "etcdctl" and "save" in c)
    install = next(i for i, c in enumerate(calls) if c[:2] == ["apt-get", "install"])
    assert save < install
    backups = list((first.bind_dir("/etc/kubernetes") / "backup").iterdir())
    assert len(backups) == 1 and backups[0].name.endswith("-pre-upgrade")
    assert (backups[0] / "snapshot.db").exists() and (backups[0] / "admin.conf").exists()
    assert backups[0].stat().st_mode & 0o777 == 0o700
    assert not (backups[0] / "client.key").exists()
    steps = {(s.phase, s.node_name): s for s in job.steps.all()}
    assert steps[("etcd snapshot", first.name)].finished_at <= (
        steps[(f"kubeadm on {first.name}", first.name)].started_at
    )

    # Packages: the first worker and both control-plane nodes upgraded and held; not the blocked.
    def versions(host: hosts.TestHost) -> dict[str, str]:
        return {
            p: (standins.state(host) / "pkg" / p).read_text().strip()
            for p in ("kubeadm", "kubelet", "kubectl")
        }

    for host in (first, second, worker_a):
        assert versions(host) == dict.fromkeys(("kubeadm", "kubelet", "kubectl"), "1.32.0-1.1")
        assert ["systemctl", "restart", "kubelet"] in standins.calls(host, "systemctl")
    assert versions(worker_b)["kubelet"] == "1.31.2-1.1"
    assert (standins.state(worker_b) / "hold" / "kubelet").exists()
    cluster.refresh_from_db()
    assert cluster.kubernetes_version == "v1.31.2"  # not every node reports the target yet

    # The budget allows it now: the retry continues at the second worker only.
    (blocked / worker_b.name).unlink()
    for host in cluster_hosts:
        standins.clear_calls(host)
    again = _wait(retry_job(operator, job))
    assert again.status == "succeeded", again.explanation
    assert _kubectl(first) == [["cordon", names[3]], ["drain", names[3]], ["uncordon", names[3]]]
    assert standins.calls(first, "kubeadm") == []
    assert standins.calls(worker_a) == []  # nothing again on the first worker
    assert versions(worker_b)["kubelet"] == "1.32.0-1.1"
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.kubernetes_version == "v1.32.0"
    assert set(Node.objects.filter(cluster=cluster).values_list("kubelet_version", flat=True)) == {
        "v1.32.0"
    }
    assert "upgraded from v1.31.2 to v1.32.0: all 4 nodes report it" in again.explanation
