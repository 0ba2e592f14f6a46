"""remove-node end to end: launched like the API launches it, run by a real Celery worker over real
SSH on the shared sshd test hosts (tests/hosts.py).

kubeadm, kubectl and systemctl are recording stand-ins (tests/standins): no cluster exists; the
kubectl stand-in answers cordon, drain (failing as a PodDisruptionBudget makes it, for a node a
test names), uncordon and delete. etcdctl is a recording stand-in too (real etcd would cost a
3-member cluster started for this test alone; ``tests/integration/nodes/test_etcd_jobs.py`` runs
the real one): it answers ``member list -w json`` with the members' IDs, so the test checks the
exact ``member remove`` call and its order. Certificates are the panel's own, issued for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job, retry_job
from clusterpanel.security.audit import Actor
from nodes.models import Node
from pki.services.certificates import issue_missing
from tests import hosts, services, standins
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

TOOLS = ["kubeadm", "kubectl"]
KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
MEMBER_IDS = {"node-3": 10501334649042878790, "node-4": 1234, "node-5": 77}


@pytest.fixture
def equipped(test_hosts: list[hosts.TestHost]) -> Iterator[list[hosts.TestHost]]:
    """The shared hosts with the stand-ins, their calls cleared; what this test adds is removed
    after it (the shared hosts serve other tests)."""
    listing = json.dumps(
        {
            "header": {"cluster_id": 1},
            "members": [
                {"ID": i, "name": n, "peerURLs": [f"https://{n}:2380"]}
                for n, i in MEMBER_IDS.items()
            ],
        },
        separators=(",", ":"),
    )
    for host in test_hosts:
        standins.install_standins(host, TOOLS)
        standins.install_recorder(host, "systemctl")
        standins.install_recorder(host, "etcdctl", answer=listing)
        standins.clear_calls(host)
    yield test_hosts
    for host in test_hosts:
        for name in ("etcdctl", "systemctl"):
            (host.bind_dir("/usr/local/sbin") / name).unlink(missing_ok=True)
        blocked = standins.state(host) / "kubectl-drain-blocked"
        for path in blocked.glob("*"):
            path.unlink()
        for path in host.bind_dir("/etc/cni/net.d").glob("*"):
            path.unlink()


def _wait(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 90, f"{job} to end")
    return job


def _steps(job: Job) -> list[tuple[str, str, str]]:
    return [(s.phase, s.name, s.status) for s in job.steps.order_by("position")]


def test_remove_node_refuses_the_last_control_plane_drains_first_and_removes_etcd_members_first(
    jobs_worker: str, equipped: list[hosts.TestHost], ssh_client_key: str
) -> None:
    cp_host, worker_host, *etcd_hosts = equipped
    admin = Actor.for_command(make_user("remove-admin", "admin"))
    operator = Actor.for_command(make_user("remove-operator", "operator"))
    cluster = make_cluster("remove", kubernetes_version="v1.31.2", etcd_topology="external")
    nodes: dict[str, Node] = {}
    for host, role in zip(
        equipped, ["control-plane", "worker", "etcd", "etcd", "etcd"], strict=True
    ):
        node = make_node(cluster, role, host.name, host.address, ssh_private_key=ssh_client_key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.joined_at = timezone.now() if role != "etcd" else None
        node.save()
        nodes[host.name] = node
    issue_missing(cluster, actor=SETUP)

    # The last control-plane node: refused before anything runs; an operator may not even try.
    with pytest.raises(PermissionDenied):
        launch_job(operator, cluster, "remove-node", [nodes["node-1"].pk], {})
    with pytest.raises(InputError, match="last control-plane node") as refused:
        launch_job(admin, cluster, "remove-node", [nodes["node-1"].pk], {})
    assert refused.value.field == "nodes"
    assert not Job.objects.filter(cluster=cluster).exists()

    # A worker whose drain a PodDisruptionBudget blocks: stopped, uncordoned, not deleted.
    blocked = standins.state(cp_host) / "kubectl-drain-blocked"
    blocked.mkdir(parents=True, exist_ok=True)
    (blocked / "node-2").write_text("default/web-0\n")
    (worker_host.bind_dir("/etc/cni/net.d") / "10-flannel.conflist").write_text("{}\n")
    job = _wait(
        launch_job(operator, cluster, "remove-node", [nodes["node-2"].pk], {"drain_timeout": 5})
    )
    assert job.status == "failed", job.explanation
    assert "the drain of node-2 failed: node-2 uncordoned, not removed" in job.explanation
    kubectl = standins.calls(cp_host, "kubectl")
    assert kubectl == [
        [*KUBECTL, "cordon", "node-2"],
        [
            *KUBECTL,
            "drain",
            "node-2",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--grace-period=-1",
            "--timeout=5s",
        ],
        [*KUBECTL, "uncordon", "node-2"],
    ]
    assert standins.calls(worker_host, "kubeadm") == []
    nodes["node-2"].refresh_from_db()
    assert nodes["node-2"].joined_at is not None

    # The budget allows it now: the retry drains, resets, deletes and cleans up, in that order.
    (blocked / "node-2").unlink()
    standins.clear_calls(cp_host)
    again = _wait(retry_job(operator, job))
    assert again.status == "succeeded", again.explanation
    assert [c[3:] for c in standins.calls(cp_host, "kubectl")] == [
        ["cordon", "node-2"],
        [
            "drain",
            "node-2",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--grace-period=-1",
            "--timeout=5s",
        ],
        ["delete", "node", "node-2", "--ignore-not-found"],
    ]
    assert standins.calls(worker_host, "kubeadm") == [["kubeadm", "reset", "-f"]]
    assert [s[0] for s in _steps(again)] == ["drain", "reset", "delete", "clean-up", "record"]
    assert list(worker_host.bind_dir("/etc/cni/net.d").iterdir()) == []
    nodes["node-2"].refresh_from_db()
    assert nodes["node-2"].joined_at is None and Node.objects.filter(pk=nodes["node-2"].pk)
    assert "node-2 removed from cluster remove" in again.explanation

    # An external etcd member (of three): removed from etcd first, on a member that stays, by the
    # hex form of its ID, then its etcd stopped. An operator may not.
    with pytest.raises(PermissionDenied):
        launch_job(operator, cluster, "remove-node", [nodes["node-5"].pk], {})
    member = _wait(launch_job(admin, cluster, "remove-node", [nodes["node-5"].pk], {}))
    assert member.status == "succeeded", member.explanation
    etcdctl = standins.calls(etcd_hosts[0], "etcdctl")
    assert [c[-4:] for c in etcdctl] == [
        ["member", "list", "-w", "json"],
        ["--dial-timeout=3s", "member", "remove", "4d"],
    ]
    assert f"--cert=/var/tmp/clusterpanel-remove-node-{member.pk}/client.crt" in etcdctl[0]
    staying = [f"https://{h.address}:2379" for h in etcd_hosts[:2]]
    assert f"--endpoints={','.join(staying)}" in etcdctl[0]
    assert standins.calls(etcd_hosts[2], "etcdctl") == []
    assert standins.calls(etcd_hosts[2], "systemctl") == [["systemctl", "disable", "--now", "etcd"]]
    steps = list(member.steps.order_by("position"))
    assert [(s.phase, s.node_name) for s in steps] == [
        ("etcd member", "node-3"),
        ("stop etcd", "node-5"),
        ("record", ""),
    ]
    assert steps[0].finished_at <= steps[1].started_at
    # The client certificate's work directory is gone from the member that ran etcdctl.
    assert "rm -rf /var/tmp/clusterpanel-remove-node-" in etcd_hosts[0].received_log.read_text()
