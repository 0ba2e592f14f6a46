"""The job kinds of binary-installed clusters on the panel's side (no host): the flavor rule both
ways, the preview of each kind from the inventory, the bundle checked against its SHA256SUMS,
and the files adapter's shapes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from django.core.exceptions import PermissionDenied

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobFailed
from clusterpanel.jobs.services import plan_job
from clusterpanel.security.audit import Actor
from nodes import binary_bundle, binary_files
from nodes.models import Cluster, ClusterFlavor
from nodes.recipes import binary_install
from nodes.recipes.binary_common import NodeFile
from pki.domain.binary_layout import services_for
from tests import binary_sources
from tests.factories import make_cluster, make_node, make_user

pytestmark = pytest.mark.django_db

BINARY_KINDS = (
    "binary-install", "binary-distribute-pki", "binary-start", "binary-join",
    "binary-cert-rollout", "binary-upgrade",
)  # fmt: skip
KUBEADM_KINDS = (
    "install", "distribute-pki", "bootstrap", "join", "upgrade", "cert-rollout", "remove-node",
    "preflight", "cert-scan", "etcd-backup",
)  # fmt: skip


@pytest.fixture
def admin() -> Actor:
    return Actor.for_command(make_user("bin-admin", "admin"))


@pytest.fixture
def bundle_dir(settings: Any, tmp_path: Path) -> Path:
    settings.CLUSTERPANEL_BINARY_BUNDLE_DIR = str(tmp_path)
    files = {
        "kubernetes-server-v1.31.2-linux-amd64.tar.gz": b"k8s 1.31.2",
        "kubernetes-server-v1.32.0-linux-amd64.tar.gz": b"k8s 1.32.0",
        "etcd-v3.5.9-linux-amd64.tar.gz": b"old etcd",
        "etcd-v3.5.16-linux-amd64.tar.gz": b"etcd",
        "cni-plugins-linux-amd64-v1.5.1.tgz": b"cni",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    sums = "".join(f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in files.items())
    (tmp_path / "SHA256SUMS").write_text(sums)
    return tmp_path


def _binary_cluster() -> Cluster:
    cluster = make_cluster("bin", flavor=ClusterFlavor.BINARY, kubernetes_version="v1.31.2")
    for _ in range(2):
        make_node(cluster, "control-plane")
    make_node(cluster, "worker")
    for node in cluster.nodes.all():
        services = services_for(node.role, etcd_member=node.role == "control-plane")
        files = [NodeFile("/etc/k8s/ssl/ca.pem", b"ca\n", 0o644)] + [
            NodeFile(f"/etc/systemd/system/{s}.service", b"[Service]\n", 0o644) for s in services
        ]
        binary_sources.write_node_files(cluster, node, files)
    return cluster


def test_a_binary_kind_refuses_a_kubeadm_cluster_and_a_kubeadm_kind_a_binary_one(
    admin: Actor,
) -> None:
    kubeadm = make_cluster("kubeadm")
    make_node(kubeadm, "control-plane")
    binary = make_cluster("bin", flavor=ClusterFlavor.BINARY)
    make_node(binary, "control-plane")
    for kind in BINARY_KINDS:
        with pytest.raises(InputError, match="is a job of binary clusters") as refused:
            plan_job(admin, kubeadm, kind, None, {})
        assert refused.value.field == "kind"
        assert "cluster kubeadm is a kubeadm cluster" in str(refused.value)
    for kind in KUBEADM_KINDS:
        with pytest.raises(InputError, match="is a job of kubeadm clusters") as refused:
            plan_job(admin, binary, kind, None, {})
        assert refused.value.field == "kind"
    # Facts read the host, whatever runs on it.
    assert plan_job(admin, binary, "facts", None, {})["plan"]["kind"] == "facts"


def test_previews_come_from_the_inventory_the_layout_and_the_bundle(
    admin: Actor, bundle_dir: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = _binary_cluster()
    try:
        # A preview never reads a tarball: it shows the path, size and SHA256SUMS' digest.
        def whole(path: Path) -> bytes:
            raise AssertionError(f"{path} read by a preview")

        monkeypatch.setattr(binary_bundle, "sha256_of", whole)
        monkeypatch.setattr(Path, "read_bytes", whole)
        install = plan_job(admin, cluster, "binary-install", None, {})["plan"]
        monkeypatch.undo()
        assert [p["name"] for p in install["phases"]] == ["service user", "upload", "install"]
        upload = install["phases"][1]["steps"][0]
        # The newest etcd of the bundle; the cluster's Kubernetes version.
        assert upload["name"] == "upload v1.31.2, etcd v3.5.16, cni v1.5.1"
        k8s = bundle_dir / "kubernetes-server-v1.31.2-linux-amd64.tar.gz"
        assert upload["files"][0] == {
            "path": f"/opt/kubernetes/staging/{k8s.name}",
            "source": str(k8s.resolve()),
            "mode": "0644",
            "owner": "root:root",
            "size": 10,
            "sha256": hashlib.sha256(b"k8s 1.31.2").hexdigest(),
            "content": None,
            "skip_if_identical": True,
        }
        start = plan_job(admin, cluster, "binary-start", None, {"wait_seconds": 30})["plan"]
        assert [p["name"] for p in start["phases"]] == [
            "units", "start etcd", "start kube-apiserver",
            "start kube-controller-manager kube-scheduler", "start kubelet kube-proxy",
        ]  # fmt: skip
        upgrade = plan_job(admin, cluster, "binary-upgrade", None, {"version": "v1.32.0"})["plan"]
        assert upgrade["phases"][0]["name"] == "plan"
        assert upgrade["phases"][-1]["name"] == "record"
        with pytest.raises(InputError, match="skips a minor version") as refused:
            plan_job(admin, cluster, "binary-upgrade", None, {"version": "v1.33.0"})
        assert refused.value.field == "version"
        with pytest.raises(InputError, match=r"no kubernetes-server-v1\.31\.5") as refused:
            plan_job(admin, cluster, "binary-upgrade", None, {"version": "v1.31.5"})
        assert refused.value.field == "version"
        worker = cluster.nodes.get(role="worker")
        join = plan_job(admin, cluster, "binary-join", [worker.pk], {})["plan"]
        assert {s["node"] for p in join["phases"] for s in p["steps"]} == {worker.name}
        with pytest.raises(InputError, match="exactly one worker"):
            plan_job(admin, cluster, "binary-join", None, {})
        # A service without its unit file is refused before anything runs.
        binary_sources.write_node_files(cluster, worker, [])
        with pytest.raises(InputError, match="no unit file for kubelet, kube-proxy") as refused:
            plan_job(admin, cluster, "binary-start", [worker.pk], {})
        assert refused.value.field == "nodes"
        settings.CLUSTERPANEL_BINARY_BUNDLE_DIR = str(bundle_dir / "missing")
        with pytest.raises(InputError, match="no SHA256SUMS") as refused:
            plan_job(admin, cluster, "binary-install", None, {})
        assert refused.value.field == "cluster"
    finally:
        binary_sources.forget(cluster)


def test_distributing_to_control_plane_nodes_is_for_admins(admin: Actor) -> None:
    cluster = _binary_cluster()
    operator = Actor.for_command(make_user("bin-operator", "operator"))
    try:
        worker = cluster.nodes.get(role="worker")
        assert plan_job(operator, cluster, "binary-distribute-pki", [worker.pk], {})["plan"]
        for kind in ("binary-distribute-pki", "binary-cert-rollout"):
            with pytest.raises(PermissionDenied):
                plan_job(operator, cluster, kind, None, {})
            assert plan_job(admin, cluster, kind, None, {})["plan"]["kind"] == kind
    finally:
        binary_sources.forget(cluster)


def test_the_bundle_is_checked_against_sha256sums_before_anything_is_sent(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tarballs are hashed a chunk at a time and named by path: never read whole.
    def whole(path: Path) -> bytes:
        raise AssertionError(f"{path} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    bundle = binary_bundle.load_bundle("1.31.2")
    k8s = bundle_dir / "kubernetes-server-v1.31.2-linux-amd64.tar.gz"
    assert bundle.kubernetes == binary_install.Tarball(
        k8s.name, hashlib.sha256(b"k8s 1.31.2").hexdigest(), str(k8s.resolve()), 10
    )
    monkeypatch.undo()
    assert (bundle.etcd_version, bundle.cni_version) == ("v3.5.16", "v1.5.1")
    (bundle_dir / "cni-plugins-linux-amd64-v1.5.1.tgz").write_bytes(b"tampered")
    with pytest.raises(JobFailed, match=r"cni-plugins-linux-amd64-v1\.5\.1\.tgz does not match"):
        binary_bundle.load_bundle("v1.31.2")
    # A preview only finds the files; the run checks them.
    assert binary_bundle.load_bundle("v1.31.2", verify=False).cni.name.endswith(".tgz")
    sums = bundle_dir / "SHA256SUMS"
    sums.write_text(
        "\n".join(line for line in sums.read_text().splitlines() if "etcd-v3.5.16" not in line)
    )
    with pytest.raises(JobFailed, match=r"SHA256SUMS of the release bundle does not name etcd"):
        binary_bundle.load_bundle("v1.31.2", verify=False)


def test_the_adapter_takes_the_shapes_the_pki_answers() -> None:
    class Row:
        def __init__(self, path: str, content: bytes, mode: int) -> None:
            self.path, self.content, self.mode = path, content, mode

    found = binary_files.as_node_files(
        [
            ("/etc/k8s/ssl/ca.pem", "ca\n", 0o644),
            ("/etc/k8s/ssl/admin-key.pem", b"key", 0o600),
            Row("/etc/k8s/admin.kubeconfig", b"cfg", 0o600),
            ["/etc/k8s/audit-policy.yaml", b"p", 0o644, True],
        ]
    )
    assert [(f.path, f.content, f.mode, f.secret) for f in found] == [
        ("/etc/k8s/ssl/ca.pem", b"ca\n", 0o644, False),
        ("/etc/k8s/ssl/admin-key.pem", b"key", 0o600, True),
        ("/etc/k8s/admin.kubeconfig", b"cfg", 0o600, True),
        ("/etc/k8s/audit-policy.yaml", b"p", 0o644, True),
    ]

    # The renderers' RenderedFile: a NamedTuple with a kind and an owner too.
    class Rendered(NamedTuple):
        path: str
        content: bytes
        mode: int
        kind: str
        secret: bool = False
        owner: str = "root"

    (unit, kubeconfig) = binary_files.as_node_files(
        [
            Rendered("/etc/systemd/system/etcd.service", b"[Unit]\n", 0o644, "unit", False, "root"),
            Rendered("/etc/k8s/kube-proxy.kubeconfig", b"k", 0o600, "kubeconfig", True, "kube"),
        ]
    )
    assert (unit.path, unit.mode, unit.secret, unit.owner) == (
        "/etc/systemd/system/etcd.service",
        0o644,
        False,
        "root",
    )
    assert (kubeconfig.secret, kubeconfig.owner) == (True, "kube")
    mapped = binary_files.as_node_files({"/etc/k8s/ssl/x.pem": Row("", b"x", 0o644)})
    assert [(f.path, f.content) for f in mapped] == [("/etc/k8s/ssl/x.pem", b"x")]
