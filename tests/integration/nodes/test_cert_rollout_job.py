"""cert-rollout end to end on three real sshd test hosts: the PKI issued and renewed as the
Certificates tab does, the job launched like the API launches it and run by a real Celery worker
over real SSH.

The test hosts run no kubelet, container runtime or apiserver, so recording stand-ins
(tests/standins) take their place on each host's PATH: ``crictl ps --name <c> -q`` lists a
container while the static pod's manifest is in /etc/kubernetes/manifests (as the kubelet would
run it), ``systemctl`` only records, ``curl`` answers an apiserver's /livez with "ok" unless told to
fail, and ``openssl s_client`` prints the node's /etc/kubernetes/pki/apiserver.crt as the served
certificate (every other openssl call is the real one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job, retry_job
from clusterpanel.security.audit import Actor
from nodes.models import Node
from nodes.recipes.cert_rollout import STATIC_PODS
from pki.services import certificates as certificate_services
from pki.services.certificates import active_tree
from pki.services.certificates.bundles import node_bundle_files
from tests import hosts, services, standins
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]


def _wait(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 90, f"{job} to end")
    return job


def _tree(host: hosts.TestHost) -> dict[str, bytes]:
    root = host.bind_dir("/etc/kubernetes")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in (root / "pki").rglob("*")
        if p.is_file()
    } | {p.name: p.read_bytes() for p in root.glob("*.conf")}


def _expected(node: Node) -> dict[str, bytes]:
    files = node_bundle_files(node.cluster, node, include_super_admin=False)
    kept = (".crt", ".key", ".pub", ".conf")
    return {path: f.content for path, f in files.items() if path.endswith(kept)}


def _prepare(host: hosts.TestHost, node: Node) -> None:
    """The host as a kubeadm control-plane node: its current files and four static pods."""
    root = host.bind_dir("/etc/kubernetes")
    for path, f in node_bundle_files(node.cluster, node, include_super_admin=False).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
        target.chmod(f.mode)
    (root / "manifests").mkdir()
    for component in STATIC_PODS:
        (root / "manifests" / f"{component}.yaml").write_text(f"kind: Pod # {component}\n")
    standins.install_standins(host, ["crictl", "curl", "openssl"])
    standins.install_recorder(host, "systemctl")
    standins.state(host).mkdir(parents=True, exist_ok=True)
    (standins.state(host) / "crictl-static-pods").touch()


def test_control_plane_nodes_one_at_a_time_and_a_failed_livez_stops_there_until_retried(
    jobs_worker: str, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    admin = Actor.for_command(make_user("rollout-admin", "admin"))
    made = make_test_hosts([hosts.HostSpec(f"roll-cp-{i}") for i in (1, 2, 3)])
    cluster = make_cluster("rollout", key_algorithm="ECDSA-P256")
    nodes = []
    for host in made:
        node = make_node(cluster, "control-plane", host.name, host.address,
                         ssh_private_key=ssh_client_key)  # fmt: skip
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        nodes.append(node)
    certificate_services.issue_missing(cluster, actor=SETUP)
    for host, node in zip(made, nodes, strict=True):
        _prepare(host, node)
    old = {host.name: _tree(host) for host in made}
    old_serials = {n.name: active_tree(cluster)[("apiserver", n.name)].serial for n in nodes}

    certificate_services.renew(cluster, actor=SETUP)
    new = {node.name: _expected(node) for node in nodes}
    serials = {n.name: active_tree(cluster)[("apiserver", n.name)].serial for n in nodes}
    assert all(serials[n] != old_serials[n] for n in serials)
    cp1, cp2, cp3 = made
    livez = f"https://{cp2.address}:6443/livez"
    standins.make_fail(cp2, "curl", 22, when_arg=livez)

    job = _wait(launch_job(admin, cluster, "cert-rollout", None, {"wait_seconds": 3}))
    assert job.status == "failed", job.explanation
    assert job.explanation.startswith(f"cert-rollout failed on {cp2.name}: ")
    assert f"the apiserver at {livez} did not answer /livez within 3 s" in job.explanation

    # cp-1: every new file, every static pod moved out and back, kubelet restarted, then checked.
    assert _tree(cp1) == new[cp1.name]
    calls = standins.calls(cp1)
    ps = [c[3] for c in calls if c[:2] == ["crictl", "ps"]]
    assert ps == [c for c in STATIC_PODS for _ in (0, 1)]  # gone at once, back at once
    assert ["systemctl", "restart", "kubelet"] in calls
    assert ["curl", "--cacert", "/etc/kubernetes/pki/ca.crt", "-sf",
            f"https://{cp1.address}:6443/livez"] in calls  # fmt: skip
    assert ["openssl", "s_client", "-connect", f"{cp1.address}:6443"] in calls
    manifests = cp1.bind_dir("/etc/kubernetes") / "manifests"
    assert sorted(p.name for p in manifests.iterdir()) == sorted(f"{c}.yaml" for c in STATIC_PODS)
    # cp-1 was done before cp-2 was touched: its last manifest moved back before cp-2's files.
    cp1_done = max((manifests / f"{c}.yaml").stat().st_ctime_ns for c in STATIC_PODS)
    cp2_pki = cp2.bind_dir("/etc/kubernetes") / "pki" / "apiserver.crt"
    assert cp1_done < cp2_pki.stat().st_mtime_ns
    steps = {s.node_name: s for s in job.steps.all()}
    assert steps[cp1.name].status == "succeeded"
    cp1_end, cp2_start = steps[cp1.name].finished_at, steps[cp2.name].started_at
    assert cp1_end is not None and cp2_start is not None and cp1_end <= cp2_start

    # cp-2: written and restarted, but its apiserver never answered: the rollout stopped there.
    assert _tree(cp2) == new[cp2.name]
    assert ["systemctl", "restart", "kubelet"] in standins.calls(cp2)
    assert steps[cp2.name].status == "failed"
    # cp-3 untouched: no step ran, no command reached it, its old files are in place.
    assert steps[cp3.name].status != "succeeded"
    assert cp3.received_commands() == []
    assert _tree(cp3) == old[cp3.name] != new[cp3.name]
    backups = cp1.bind_dir("/etc/kubernetes") / "backup"
    (dated,) = backups.iterdir()
    assert (dated / "pki" / "apiserver.crt").read_bytes() == old[cp1.name]["pki/apiserver.crt"]

    # The apiserver on cp-2 answers again: the retry skips cp-1 and resumes at cp-2, where the
    # restarts are done (nothing is restarted twice) and only the checks remain.
    standins.stop_failing(cp2, "curl")
    for host in made:
        standins.clear_calls(host)
    again = _wait(retry_job(admin, job))
    assert again.status == "succeeded", again.explanation
    assert standins.calls(cp1) == []
    cp2_calls = standins.calls(cp2)
    assert [c[0] for c in cp2_calls] == ["curl", "openssl"]
    assert _tree(cp3) == new[cp3.name]
    assert ["systemctl", "restart", "kubelet"] in standins.calls(cp3)
    logged = "".join(chunk.text for chunk in again.chunks.all())
    key_line = new[cp3.name]["pki/apiserver.key"].decode().splitlines()[1]
    assert key_line not in logged and key_line not in str(again.plan)
    assert f"the apiserver serves the new certificate (serial {serials[cp3.name]})" in logged
