"""The distribute-pki job end to end: the PKI issued like the Certificates tab issues it, the job
launched like the API launches it and run by a real Celery worker over real SSH on real sshd test
hosts (tests/hosts.py); each host's /etc/kubernetes is its own directory, read here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job, plan_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from pki.services import certificates as certificate_services
from pki.services.certificates.bundles import node_bundle_files
from tests import hosts, services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]
CA_KEYS = ("pki/ca.key", "pki/front-proxy-ca.key", "pki/etcd/ca.key", "pki/sa.key")


def _nodes(cluster: Cluster, roles: Sequence[tuple[hosts.TestHost, str]], key: str) -> list[Node]:
    made = []
    for host, role in roles:
        node = make_node(cluster, role, host.name, host.address, ssh_private_key=key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        made.append(node)
    return made


def _run(actor: Actor, cluster: Cluster, nodes: Sequence[Node] | None = None) -> Job:
    ids = None if nodes is None else [n.pk for n in nodes]
    job = launch_job(actor, cluster, "distribute-pki", ids, {})

    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 60, f"{job} to end")
    return job


def _tree(host: hosts.TestHost) -> dict[str, tuple[bytes, int, int]]:
    root = host.bind_dir("/etc/kubernetes")
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o7777, p.stat().st_uid)
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("backup/")
    }


def test_every_node_gets_its_bundle_with_modes_replaced_files_backed_up_and_reruns_change_nothing(
    jobs_worker: str, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    admin = Actor.for_command(make_user("pki-admin", "admin"))
    cp1, cp2, worker = make_test_hosts(
        [hosts.HostSpec("pki-cp-1"), hosts.HostSpec("pki-cp-2"), hosts.HostSpec("pki-w-1")]
    )
    cluster = make_cluster("distribute")
    nodes = _nodes(
        cluster, [(cp1, "control-plane"), (cp2, "control-plane"), (worker, "worker")],
        ssh_client_key,
    )  # fmt: skip
    certificate_services.issue_missing(cluster, actor=SETUP)
    # A file already on cp-1 with other content: it is replaced and kept in the backup.
    stale = cp1.bind_dir("/etc/kubernetes") / "pki" / "ca.crt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older CA certificate\n")

    job = _run(admin, cluster)
    assert job.status == "succeeded", job.explanation

    for node, host in zip(nodes, (cp1, cp2, worker), strict=True):
        expected = node_bundle_files(cluster, node, include_super_admin=False)
        found = _tree(host)
        assert set(found) == set(expected), host.name
        for path, bundle_file in expected.items():
            content, mode, uid = found[path]
            assert content == bundle_file.content, path
            assert mode == bundle_file.mode and uid == 0, path
            if path.endswith(".key"):
                assert mode == 0o600
    assert not [path for path in _tree(worker) if path in CA_KEYS or path.endswith("ca.key")]
    assert set(_tree(worker)) == {"pki/ca.crt", "kubelet.conf"}
    assert all(path in _tree(cp1) for path in CA_KEYS)
    assert "super-admin.conf" not in _tree(cp1)

    (dated,) = (cp1.bind_dir("/etc/kubernetes") / "backup").iterdir()
    assert (dated / "pki" / "ca.crt").read_bytes() == b"an older CA certificate\n"
    assert [p.name for p in dated.rglob("*") if p.is_file()] == ["ca.crt"]
    assert not (cp2.bind_dir("/etc/kubernetes") / "backup").exists()

    # The log names each file written with its digest, never a key's content.
    logged = "".join(chunk.text for chunk in job.chunks.all())
    assert "wrote /etc/kubernetes/pki/ca.key mode 0600" in logged
    key_pem = _tree(cp1)["pki/ca.key"][0].decode()
    assert key_pem.splitlines()[1] not in logged
    assert key_pem.splitlines()[1] not in str(job.plan)

    before = {h.name: {p: h.bind_dir("/etc/kubernetes").joinpath(p).stat().st_mtime_ns
                       for p in _tree(h)} for h in (cp1, cp2, worker)}  # fmt: skip
    again = _run(admin, cluster)
    assert again.status == "succeeded", again.explanation
    for host in (cp1, cp2, worker):
        after = {p: host.bind_dir("/etc/kubernetes").joinpath(p).stat().st_mtime_ns
                 for p in _tree(host)}  # fmt: skip
        assert after == before[host.name], host.name
    assert len(list((cp1.bind_dir("/etc/kubernetes") / "backup").iterdir())) == 1


def test_operators_may_distribute_to_workers_only(
    jobs_worker: str, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    operator = Actor.for_command(make_user("pki-operator", "operator"))
    cp, worker = make_test_hosts([hosts.HostSpec("op-cp"), hosts.HostSpec("op-w")])
    cluster = make_cluster("operator-pki")
    cp_node, worker_node = _nodes(
        cluster, [(cp, "control-plane"), (worker, "worker")], ssh_client_key
    )
    certificate_services.issue_missing(cluster, actor=SETUP)
    for attempt in (
        lambda: launch_job(operator, cluster, "distribute-pki", None, {}),
        lambda: plan_job(operator, cluster, "distribute-pki", [cp_node.pk], {}),
    ):
        with pytest.raises(PermissionDenied, match="only admins"):
            attempt()
    assert not Job.objects.filter(cluster=cluster).exists()
    job = _run(operator, cluster, [worker_node])
    assert job.status == "succeeded", job.explanation
    assert set(_tree(worker)) == {"pki/ca.crt", "kubelet.conf"}
    assert not Path(cp.bind_dir("/etc/kubernetes") / "pki").exists()
