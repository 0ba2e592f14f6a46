"""The bootstrap and join jobs end to end: launched like the API launches them, run by a real
Celery worker over real SSH on the shared sshd test hosts (tests/hosts.py). kubeadm and kubectl
are recording stand-ins (tests/standins): no cluster is made; the tests assert the exact command
lines the hosts received, their order across hosts, and the kubeadm files as kubeadm read them."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

import pytest
import yaml
from django.core.exceptions import PermissionDenied

from clusterpanel.errors import InputError
from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job, plan_job, retry_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from pki.domain import health_identity
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import certificates as certificate_services
from pki.services.bootstrap.join_commands import ca_cert_hashes
from tests import hosts, services, standins
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]
CNI = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni-test\n"
# What these hosts cannot offer a kubelet (they share this machine's kernel and have no
# container runtime): each check named, as an operator would.
IGNORED = (
    "cri-socket,cgroup-driver,ip_forward,br_netfilter,overlay,bridge-nf-call-iptables,"
    "bridge-nf-call-ip6tables,swap,cpus,memory,time,port-6443,port-2379,port-2380,port-10250,"
    "port-10257,port-10259"
)
# kubeadm's own preflight is told the same checks, under its names.
KUBEADM_IGNORED = (
    "--ignore-preflight-errors=CRI,FileContent--proc-sys-net-ipv4-ip_forward,Mem,NumCPU,"
    "Port-10250,Port-10257,Port-10259,Port-2379,Port-2380,Port-6443,Swap"
)


def _fresh(host: hosts.TestHost) -> None:
    """The host as a freshly installed machine: an empty /etc/kubernetes, kubeadm and kubectl
    stand-ins without recorded calls or state (other tests share these hosts)."""
    root = host.bind_dir("/etc/kubernetes")
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    standins.clear_calls(host)
    shutil.rmtree(standins.state(host), ignore_errors=True)
    for tool in ("kubeadm", "kubectl"):
        standins.stop_failing(host, tool)
    standins.install_standins(host, ["kubeadm", "kubectl"])


def _node(cluster: Cluster, host: hosts.TestHost, role: str, key: str, **fields: object) -> Node:
    node = make_node(cluster, role, host.name, host.address, ssh_private_key=key, **fields)
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()
    return node


def _wait(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 120, f"{job} to end")
    return job


def _kube(host: hosts.TestHost) -> list[list[str]]:
    """kubeadm and kubectl calls, without the version probes of preflight."""
    return [c for c in standins.calls(host, "kubeadm", "kubectl") if "version" not in c[1:2]]


def _read(host: hosts.TestHost, what: str) -> tuple[dict, str]:
    state = standins.state(host)
    text = (state / f"kubeadm-{what}.yaml").read_text()
    return next(yaml.safe_load_all(text)), (state / f"kubeadm-{what}.mode").read_text().strip()


def test_bootstrap_three_control_planes_two_workers_resumes_after_a_failed_join_and_join_adds_one(
    jobs_worker: str,
    test_hosts: list[hosts.TestHost],
    make_test_hosts: MakeHosts,
    ssh_client_key: str,
) -> None:
    admin = Actor.for_command(make_user("boot-admin", "admin"))
    operator = Actor.for_command(make_user("boot-operator", "operator"))
    cp1, cp2, cp3, w1, w2 = test_hosts
    for host in test_hosts:
        _fresh(host)
    cluster = make_cluster("boot")
    roles = ["control-plane"] * 3 + ["worker"] * 2
    nodes = [_node(cluster, h, r, ssh_client_key) for h, r in zip(test_hosts, roles, strict=True)]
    w2_node = nodes[4]
    w2_node.labels = {"node-role.kubernetes.io/worker": ""}
    w2_node.taints = ["dedicated=gpu:NoSchedule"]
    w2_node.save()
    certificate_services.issue_missing(cluster, actor=SETUP)

    with pytest.raises(PermissionDenied, match="only admins"):
        plan_job(operator, cluster, "bootstrap", None, {})
    with pytest.raises(InputError) as refused:
        plan_job(admin, cluster, "bootstrap", None, {"ignore_preflight_errors": "all"})
    assert refused.value.field == "ignore_preflight_errors"

    # The second control-plane join fails: the job stops there, naming the node and the step.
    standins.make_fail(cp2, "kubeadm", 1, when_arg="join")
    params = {"cni_manifest": CNI, "ignore_preflight_errors": IGNORED}
    job = _wait(launch_job(admin, cluster, "bootstrap", None, params))
    assert job.status == "failed", job.explanation
    assert job.explanation.startswith("bootstrap failed on node-2: kubeadm join exited with code 1")
    assert "injected failure" in job.explanation
    assert [c[:3] for c in _kube(cp1)].count(["kubeadm", "init", "--config"]) == 1
    assert _kube(cp2) == [
        ["kubeadm", "join", "--config", "/etc/kubernetes/kubeadm-join.yaml", KUBEADM_IGNORED]
    ]
    for host in (cp3, w1, w2):
        assert not [c for c in _kube(host) if c[1] == "join"], host.name
    assert Node.objects.get(pk=nodes[0].pk).joined_at is not None
    assert Node.objects.filter(cluster=cluster, joined_at__isnull=False).count() == 1

    standins.stop_failing(cp2, "kubeadm")
    again = _wait(retry_job(admin, job))
    assert again.status == "succeeded", again.explanation

    config = "/etc/kubernetes/kubeadm-init.yaml"
    token = BootstrapToken.objects.get(cluster=cluster)
    key = CertificateKey.objects.get(cluster=cluster)
    kubectl = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--request-timeout=60s"]
    assert _kube(cp1) == [
        ["kubeadm", "init", "--config", config, "--skip-token-print",
         "--skip-phases=show-join-command", KUBEADM_IGNORED],
        [*kubectl, "apply", "-f", "-"],  # the panel's health role, once
        ["kubeadm", "init", "phase", "upload-certs", "--upload-certs",
         "--skip-certificate-key-print", "--config", config],
        [*kubectl, "-n", "kube-system", "get", "secret", f"bootstrap-token-{token.token_id}",
         "-o", "name", "--ignore-not-found"],
        ["kubeadm", "token", "create", "--config", "/etc/kubernetes/kubeadm-token.yaml"],
        [*kubectl, "apply", "-f", "-"],
        [*kubectl, "label", "node", "node-5", "node-role.kubernetes.io/worker=", "--overwrite"],
        [*kubectl, "taint", "node", "node-5", "dedicated=gpu:NoSchedule", "--overwrite"],
    ]  # fmt: skip
    applies = [c for c in standins.records(cp1) if c.argv[-3:] == ["apply", "-f", "-"]]
    assert [c.stdin for c in applies] == [health_identity.rbac_manifest().encode(), CNI.encode()]
    join = ["kubeadm", "join", "--config", "/etc/kubernetes/kubeadm-join.yaml", KUBEADM_IGNORED]
    assert _kube(cp2) == [join, join]  # the failed attempt, then the retry
    for host in (cp3, w1, w2):
        assert _kube(host) == [join], host.name

    # Order across hosts: init, then cp2, then cp3, each done before the next starts, then the
    # workers (the same phase).
    steps = {
        (s.phase, s.node_name): s
        for s in again.steps.all()
        if s.name in ("kubeadm init", "kubeadm join")
    }
    previous = {s.phase: s for s in job.steps.all() if s.name == "kubeadm init"}
    init_done = previous["init"].finished_at
    cp2_join, cp3_join = steps[("join node-2", "node-2")], steps[("join node-3", "node-3")]
    assert init_done <= cp2_join.started_at
    assert cp2_join.finished_at <= cp3_join.started_at
    for worker in ("node-4", "node-5"):
        assert cp3_join.finished_at <= steps[("join workers", worker)].started_at

    # The files as kubeadm read them: 0600, the panel's token, the CA's discovery hash, and for
    # control-plane joins the certificate key.
    hashes = ca_cert_hashes(cluster)
    for host, control_plane in ((cp2, True), (cp3, True), (w1, False), (w2, False)):
        document, mode = _read(host, "join")
        assert mode == "600 root", host.name
        discovery = document["discovery"]["bootstrapToken"]
        assert discovery["token"] == token.value
        assert discovery["caCertHashes"] == hashes
        assert discovery["apiServerEndpoint"] == cluster.normalized_endpoint
        assert document["nodeRegistration"]["name"] == host.name
        if control_plane:
            assert document["controlPlane"]["certificateKey"] == key.key
        else:
            assert "controlPlane" not in document
    init_doc, mode = _read(cp1, "init")
    assert mode == "600 root" and init_doc["certificateKey"] == key.key
    token_doc, mode = _read(cp1, "token")
    assert mode == "600 root" and token_doc["bootstrapTokens"][0]["token"] == token.value
    # Joining nodes got no kubelet.conf (kubeadm join's preflight refuses one), workers no CA.
    assert not (cp2.bind_dir("/etc/kubernetes") / "kubelet.conf").exists()
    assert (cp2.bind_dir("/etc/kubernetes") / "pki" / "ca.key").exists()
    assert not (w1.bind_dir("/etc/kubernetes") / "pki").exists()
    assert (cp1.bind_dir("/etc/kubernetes") / "kubelet.conf").exists()
    # No secret in a command line, the plan or the log.
    logged = "".join(chunk.text for j in (job, again) for chunk in j.chunks.all())
    for secret in (token.secret, key.key):
        for host in test_hosts:
            assert not [c for c in host.received_commands() if secret in c], host.name
        assert secret not in logged
        assert secret not in str(again.plan)
    for node in Node.objects.filter(cluster=cluster):
        assert node.joined_at is not None, node.name
        assert node.kubelet_version == cluster.kubernetes_version

    # join: one more worker touches only itself and the init node.
    (new_host,) = make_test_hosts([hosts.HostSpec("boot-w-3")])
    standins.install_standins(new_host, ["kubeadm", "kubectl"])
    new = _node(cluster, new_host, "worker", ssh_client_key)
    certificate_services.issue_missing(cluster, actor=SETUP)
    with pytest.raises(InputError, match="joined already"):
        plan_job(admin, cluster, "join", [nodes[3].pk], {})
    with pytest.raises(PermissionDenied, match="only admins"):
        plan_job(operator, cluster, "join", [nodes[1].pk], {})
    # The cluster holds the token now: the stand-in kubectl finds its Secret.
    (standins.state(cp1) / "kubectl-get").write_text(f"secret/bootstrap-token-{token.token_id}\n")
    received = {host.name: len(host.received_commands()) for host in test_hosts}
    init_calls = len(_kube(cp1))
    joined = _wait(
        launch_job(operator, cluster, "join", [new.pk], {"ignore_preflight_errors": IGNORED})
    )
    assert joined.status == "succeeded", joined.explanation
    for host in (cp2, cp3, w1, w2):
        assert len(host.received_commands()) == received[host.name], host.name
    assert len(cp1.received_commands()) > received[cp1.name]
    assert [c[1] for c in _kube(cp1)[init_calls:]] == ["--kubeconfig"]  # the token check only
    assert _kube(new_host) == [join]
    document, mode = _read(new_host, "join")
    assert mode == "600 root"
    assert document["discovery"]["bootstrapToken"]["token"] == token.value
    assert "controlPlane" not in document
    new.refresh_from_db()
    assert new.joined_at is not None


def test_health_access_applies_the_health_role_on_a_control_plane_node_and_again_harmlessly(
    jobs_worker: str, test_hosts: list[hosts.TestHost], ssh_client_key: str
) -> None:
    """A cluster the bootstrap did not make (bootstrapped before, or imported) gets the panel's
    health role from the health-access job: the same manifest, applied with admin.conf."""
    operator = Actor.for_command(make_user("access-operator", "operator"))
    cp, worker = test_hosts[0], test_hosts[1]
    for host in (cp, worker):
        _fresh(host)
    cluster = make_cluster("imported")
    _node(cluster, cp, "control-plane", ssh_client_key)
    only_worker = _node(cluster, worker, "worker", ssh_client_key)

    with pytest.raises(InputError) as refused:
        plan_job(operator, cluster, "health-access", [only_worker.pk], {})
    assert refused.value.field == "nodes" and "control-plane node" in str(refused.value)
    with pytest.raises(InputError) as unknown:
        plan_job(operator, cluster, "health-access", None, {"force": True})
    assert unknown.value.field == "force"
    preview = plan_job(operator, cluster, "health-access", None, {})
    (phase,) = preview["plan"]["phases"]
    (step,) = phase["steps"]
    assert step["node"] == cp.name and step["commands"][0]["stdin"].startswith("the health role")

    for _ in range(2):  # apply is idempotent: a second run changes nothing and succeeds
        job = _wait(launch_job(operator, cluster, "health-access", None, {}))
        assert job.status == "succeeded", job.explanation
    kubectl = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--request-timeout=60s"]
    assert _kube(cp) == [[*kubectl, "apply", "-f", "-"]] * 2
    applies = [c.stdin for c in standins.records(cp) if c.argv[-3:] == ["apply", "-f", "-"]]
    assert applies == [health_identity.rbac_manifest().encode()] * 2
    assert _kube(worker) == []
