"""The plans of the binary-installed clusters' jobs: the order of their phases and steps (start
order, one node at a time for a rollout and an upgrade), what each node gets, and the refusals.
Three control-plane nodes (stacked etcd) and two workers, with small fake files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import (
    binary_install,
    binary_join,
    binary_pki,
    binary_rollout,
    binary_start,
    binary_upgrade,
)
from nodes.recipes.binary_common import (
    BinaryCluster,
    BinaryNode,
    Layout,
    NodeFile,
    Probes,
    backup_command,
    file_writes,
)
from nodes.recipes.plan import (
    MASK,
    ClusterSpec,
    Command,
    FileStream,
    FileWrite,
    NodeTarget,
    Plan,
)

SPEC = ClusterSpec("bin", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
START_ORDER = (
    ("etcd",),
    ("kube-apiserver",),
    ("kube-controller-manager", "kube-scheduler"),
    ("kubelet", "kube-proxy"),
)
CP_SERVICES = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
)  # fmt: skip
WORKER_SERVICES = ("kubelet", "kube-proxy")
LAYOUT = Layout()
KEY = b"-----BEGIN EC PRIVATE KEY-----\nsecret-key-material\n-----END EC PRIVATE KEY-----\n"
PROBES = Probes(
    etcd_ca="/etc/k8s/ssl/etcd-ca.pem",
    etcd_cert="/etc/k8s/ssl/etcd-healthcheck-client.pem",
    etcd_key="/etc/k8s/ssl/etcd-healthcheck-client-key.pem",
    admin_kubeconfig="/etc/k8s/admin.kubeconfig",
)
CA_KEYS = frozenset({"/etc/k8s/ssl/ca-key.pem", "/etc/k8s/ssl/service-account-key.pem"})


def _files(name: str, services: tuple[str, ...], version: str = "1") -> tuple[NodeFile, ...]:
    files = [
        NodeFile("/etc/k8s/ssl/ca.pem", b"ca cert\n", 0o644),
        NodeFile("/etc/k8s/ssl/kubelet-client.pem", f"cert of {name} {version}\n".encode(), 0o644),
        NodeFile("/etc/k8s/ssl/kubelet-client-key.pem", KEY, 0o640, secret=True),
        NodeFile("/etc/k8s/kubelet.kubeconfig", b"client-key-data: secret\n", 0o600, True),
    ]
    for service in services:
        unit = f"[Service]\nExecStart=/opt/kubernetes/bin/{service}\n".encode()
        files.append(NodeFile(f"/etc/systemd/system/{service}.service", unit, 0o644))
    if "kube-apiserver" in services:
        files.append(NodeFile("/etc/k8s/ssl/ca-key.pem", KEY, 0o600, True))
    return tuple(files)


def _node(
    name: str, address: str, role: str, services: tuple[str, ...], v: str = "1"
) -> BinaryNode:
    return BinaryNode(NodeTarget(name, address, role), services, _files(name, services, v))


CPS = [_node(f"cp-{i}", f"10.0.0.1{i}", "control-plane", CP_SERVICES) for i in (1, 2, 3)]
WORKERS = [_node(f"w-{i}", f"10.0.0.2{i}", "worker", WORKER_SERVICES) for i in (1, 2)]


def _cluster(nodes: list[BinaryNode] | None = None) -> BinaryCluster:
    return BinaryCluster(
        layout=LAYOUT,
        start_order=START_ORDER,
        nodes=tuple(nodes if nodes is not None else [*WORKERS, *CPS]),
        etcd_members=("10.0.0.11", "10.0.0.12", "10.0.0.13"),
        probes=PROBES,
        ca_keys=CA_KEYS,
    )


def _bundle(version: str = "v1.31.2") -> binary_install.Bundle:
    def tarball(name: str) -> binary_install.Tarball:
        return binary_install.Tarball(name, "a" * 64, f"/srv/bundle/{name}", 400 << 20)

    return binary_install.Bundle(
        kubernetes_version=version,
        etcd_version="v3.5.16",
        cni_version="v1.5.1",
        kubernetes=tarball(f"kubernetes-server-{version}-linux-amd64.tar.gz"),
        etcd=tarball("etcd-v3.5.16-linux-amd64.tar.gz"),
        cni=tarball("cni-plugins-linux-amd64-v1.5.1.tgz"),
    )


def _targets(cluster: BinaryCluster) -> list[NodeTarget]:
    return [n.target for n in cluster.nodes]


def _lines(plan: Plan) -> list[str]:
    return [
        a.line for p in plan.phases for s in p.steps for a in s.actions if isinstance(a, Command)
    ]


def _layout(plan: Plan) -> list[tuple[str, list[tuple[str, str | None]]]]:
    return [(p.name, [(s.name, s.node) for s in p.steps]) for p in plan.phases]


def test_start_writes_units_then_enables_each_group_in_dependency_order_waiting_for_each() -> None:
    cluster = _cluster()
    plan = binary_start.plan(SPEC, _targets(cluster), {}, cluster)
    names = [p.name for p in plan.phases]
    assert names == [
        "units",
        "start etcd",
        "start kube-apiserver",
        "start kube-controller-manager kube-scheduler",
        "start kubelet kube-proxy",
    ]
    by_phase = {p.name: [s.node for s in p.steps] for p in plan.phases}
    # etcd on all members in one phase (they start together, for the quorum); workers last only.
    assert by_phase["start etcd"] == ["cp-1", "cp-2", "cp-3"]
    assert by_phase["start kube-apiserver"] == ["cp-1", "cp-2", "cp-3"]
    assert by_phase["start kubelet kube-proxy"] == ["w-1", "w-2", "cp-1", "cp-2", "cp-3"]
    units = plan.phases[0].steps[0]
    writes = [a for a in units.actions if isinstance(a, FileWrite)]
    assert {w.path for w in writes} == {
        "/etc/systemd/system/kubelet.service",
        "/etc/systemd/system/kube-proxy.service",
    }
    assert all((w.owner, w.group, w.mode) == ("root", "root", 0o644) for w in writes)
    assert isinstance(units.actions[-1], Command)
    assert units.actions[-1].line == "systemctl daemon-reload"
    assert units.name.startswith("write units ")

    etcd = [a.line for a in plan.phases[1].steps[0].actions if isinstance(a, Command)]
    assert etcd[0] == "systemctl enable --now --no-block etcd"
    assert "systemctl is-active --quiet etcd" in etcd[1]
    assert "/opt/kubernetes/bin/etcdctl --endpoints=https://10.0.0.11:2379" in etcd[2]
    assert "--cert=/etc/k8s/ssl/etcd-healthcheck-client.pem" in etcd[2]
    assert "endpoint health" in etcd[2]
    api = [a.line for a in plan.phases[2].steps[1].actions if isinstance(a, Command)]
    assert api[0] == "systemctl enable --now kube-apiserver"
    assert "systemctl is-active --quiet kube-apiserver" in api[1]
    assert (
        "/opt/kubernetes/bin/kubectl --kubeconfig=/etc/k8s/admin.kubeconfig "
        "--server=https://10.0.0.12:6443 --request-timeout=5s get --raw /livez"
    ) in api[2]
    cm = [a.line for a in plan.phases[3].steps[0].actions if isinstance(a, Command)]
    assert [c for c in cm if c.startswith("systemctl enable")] == [
        "systemctl enable --now kube-controller-manager",
        "systemctl enable --now kube-scheduler",
    ]
    # Each enable is followed by its own wait, before the next unit is enabled.
    assert "is-active --quiet kube-controller-manager" in cm[1]
    # Nothing downloads, nothing probes over a network tool.
    assert not [line for line in _lines(plan) if "curl" in line or "wget" in line]
    # Every wait's command timeout is longer than the loop it runs (wait + a margin).
    waits = [
        a for p in plan.phases for s in p.steps for a in s.actions
        if isinstance(a, Command) and "until" in a.line
    ]  # fmt: skip
    assert waits and all(
        c.timeout > binary_start.validate_params({})["wait_seconds"] for c in waits
    )


def test_install_sends_each_node_only_its_tarballs_checks_them_and_installs_its_binaries() -> None:
    cluster = _cluster()
    plan = binary_install.plan(SPEC, _targets(cluster), {}, (cluster, _bundle()))
    assert [p.name for p in plan.phases] == ["service user", "upload", "install"]
    bundle_id = "v1.31.2, etcd v3.5.16, cni v1.5.1"
    assert [s.name for s in plan.phases[1].steps] == [f"upload {bundle_id}"] * 5
    user = plan.phases[0].steps[0].actions[0]
    assert isinstance(user, Command)
    assert user.line == (
        "id -u kube >/dev/null 2>&1 || "
        "useradd --system --no-create-home --shell /usr/sbin/nologin kube"
    )
    uploads = {s.node: s for s in plan.phases[1].steps}
    # The tarballs are streamed from the panel host's bundle (named by path, size and digest,
    # never read by the plan), skipped when the node holds them already; SHA256SUMS is written.
    streams = [a for a in uploads["w-1"].actions if isinstance(a, FileStream)]
    assert [(a.path, a.source, a.size, a.sha256, a.mode, a.skip_if_identical) for a in streams] == [
        (
            "/opt/kubernetes/staging/kubernetes-server-v1.31.2-linux-amd64.tar.gz",
            "/srv/bundle/kubernetes-server-v1.31.2-linux-amd64.tar.gz",
            400 << 20,
            "a" * 64,
            0o644,
            True,
        ),
        (
            "/opt/kubernetes/staging/cni-plugins-linux-amd64-v1.5.1.tgz",
            "/srv/bundle/cni-plugins-linux-amd64-v1.5.1.tgz",
            400 << 20,
            "a" * 64,
            0o644,
            True,
        ),
    ]
    worker_files = [a.path for a in uploads["w-1"].actions if isinstance(a, FileWrite)]
    assert worker_files == ["/opt/kubernetes/staging/SHA256SUMS"]
    cp_files = [a.path for a in uploads["cp-1"].actions if isinstance(a, FileStream)]
    assert "/opt/kubernetes/staging/etcd-v3.5.16-linux-amd64.tar.gz" in cp_files
    shown = plan.preview()["phases"][1]["steps"][0]["files"][0]
    assert shown == {
        "path": "/opt/kubernetes/staging/kubernetes-server-v1.31.2-linux-amd64.tar.gz",
        "source": "/srv/bundle/kubernetes-server-v1.31.2-linux-amd64.tar.gz",
        "mode": "0644",
        "owner": "root:root",
        "size": 400 << 20,
        "sha256": "a" * 64,
        "content": None,
        "skip_if_identical": True,
    }
    sums = next(
        a for a in uploads["w-1"].actions if isinstance(a, FileWrite) and a.path.endswith("SUMS")
    )
    assert (
        sums.content
        == (
            f"{'a' * 64}  kubernetes-server-v1.31.2-linux-amd64.tar.gz\n"
            f"{'a' * 64}  cni-plugins-linux-amd64-v1.5.1.tgz\n"
        ).encode()
    )
    check = uploads["w-1"].actions[-1]
    assert isinstance(check, Command)
    assert check.line.startswith("cd /opt/kubernetes/staging && sha256sum -c --strict SHA256SUMS")

    installs = {s.node: s.actions[0] for s in plan.phases[2].steps}
    worker = installs["w-1"]
    assert isinstance(worker, Command)
    assert "tar -xzf /opt/kubernetes/staging/kubernetes-server-v1.31.2-linux-amd64.tar.gz" in (
        worker.line
    )
    assert (
        "install -m 0755 /opt/kubernetes/staging/kubernetes/kubernetes/server/bin/kubelet "
        '/opt/kubernetes/staging/kubernetes/kubernetes/server/bin/kube-proxy "$bin"/'
    ) in worker.line
    assert "-exec install -m 0755 {} /opt/cni/bin/ \\;" in worker.line
    assert "kube-apiserver" not in worker.line and "etcd" not in worker.line
    cp = installs["cp-1"]
    assert isinstance(cp, Command)
    for binary in ("etcd", "etcdctl"):
        assert f"/opt/kubernetes/staging/etcd/etcd-v3.5.16-linux-amd64/{binary}" in cp.line
    for binary in ("kube-apiserver", "kubectl", "kube-controller-manager", "kube-scheduler"):
        assert f"server/bin/{binary}" in cp.line
    assert cp.line.rstrip().endswith("rm -rf /opt/kubernetes/staging")
    assert "install -d -m 0700 -o kube -g kube /var/lib/etcd" in cp.line
    assert "/var/lib/etcd" not in worker.line
    assert not [line for line in _lines(plan) if "curl" in line or "wget" in line]
    # The preview names the tarballs with their sha256, not their bytes.
    assert "tarball kubernetes" not in json.dumps(plan.preview())


def test_distribute_writes_the_certificates_group_readable_by_the_service_user_backed_up() -> None:
    cluster = _cluster()
    plan = binary_pki.plan(SPEC, _targets(cluster), {}, cluster)
    (phase,) = plan.phases
    step = next(s for s in phase.steps if s.node == "cp-1")
    user, backup, *writes = step.actions
    assert isinstance(user, Command) and "useradd --system" in user.line
    assert isinstance(backup, Command) and "backup /etc/k8s/ssl/ca-key.pem" in backup.line
    assert "b=/etc/k8s/backup/$(date -u +%Y%m%dT%H%M%SZ)" in backup.line
    found = {
        w.path: (w.mode, w.owner, w.group, w.secret) for w in writes if isinstance(w, FileWrite)
    }
    assert found["/etc/k8s/ssl/kubelet-client-key.pem"] == (0o640, "root", "kube", True)
    assert found["/etc/k8s/ssl/ca.pem"] == (0o644, "root", "kube", False)
    assert not [p for p in found if p.startswith("/etc/systemd/")]  # units are start's
    preview = json.dumps(plan.preview())
    assert "secret-key-material" not in preview and MASK in preview
    # Another content, another step name: a retry after a renewal writes again.
    renewed = _cluster([_node("cp-1", "10.0.0.11", "control-plane", CP_SERVICES, "2")])
    again = binary_pki.plan(SPEC, _targets(renewed), {}, renewed)
    assert again.phases[0].steps[0].name != step.name
    assert (
        step.name
        == binary_pki.plan(SPEC, _targets(cluster), {}, _cluster()).phases[0].steps[2].name
    )


def test_a_ca_key_for_a_worker_or_a_bad_path_or_unknown_params_are_refused() -> None:
    leaked = BinaryNode(
        WORKERS[0].target, WORKER_SERVICES, (NodeFile("/etc/k8s/ssl/ca-key.pem", KEY, 0o600),)
    )
    with pytest.raises(ValueError, match="CA keys go to control-plane nodes only"):
        binary_pki.plan(SPEC, [leaked.target], {}, _cluster([leaked]))
    bad = BinaryNode(CPS[0].target, CP_SERVICES, (NodeFile("/etc/k8s/../shadow", b"x", 0o644),))
    with pytest.raises(ValueError, match="bad path"):
        binary_pki.plan(SPEC, [bad.target], {}, _cluster([bad]))
    for module in (binary_install, binary_pki):
        with pytest.raises(InputError) as refused:
            module.validate_params({"offline_bundle": "/x"})
        assert refused.value.field == "offline_bundle"
    for module in (binary_start, binary_join, binary_rollout):
        with pytest.raises(InputError) as refused:
            module.validate_params({"wait": 5})
        assert refused.value.field == "wait"
        assert module.validate_params({"wait_seconds": "30"}) == {"wait_seconds": 30}
        with pytest.raises(InputError) as refused:
            module.validate_params({"wait_seconds": 0})
        assert refused.value.field == "wait_seconds"


def test_rollout_writes_everywhere_then_restarts_one_etcd_member_then_one_node_at_a_time() -> None:
    cluster = _cluster()
    plan = binary_rollout.plan(SPEC, _targets(cluster), {"wait_seconds": 30}, cluster)
    assert [p.name for p in plan.phases] == [
        "distribute-pki",
        "restart etcd on cp-1",
        "restart etcd on cp-2",
        "restart etcd on cp-3",
        "restart cp-1",
        "restart cp-2",
        "restart cp-3",
        "restart w-1",
        "restart w-2",
    ]
    assert len(plan.phases[0].steps) == 5
    # One step per restart phase: the executor runs phases one after another, so a node starts
    # only once the node before is healthy.
    assert all(len(p.steps) == 1 for p in plan.phases[1:])
    etcd = [a.line for a in plan.phases[1].steps[0].actions if isinstance(a, Command)]
    # Every member healthy before one restarts (the others keep quorum), then its own health.
    assert (
        "--endpoints=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379"
        in (etcd[0])
    )
    assert etcd[1] == "systemctl restart etcd"
    assert "is-active --quiet etcd" in etcd[2] and "endpoint health" in etcd[3]
    cp = [a.line for a in plan.phases[4].steps[0].actions if isinstance(a, Command)]
    restarts = [c for c in cp if c.startswith("systemctl restart")]
    assert restarts == [
        "systemctl restart kube-apiserver",
        "systemctl restart kube-controller-manager",
        "systemctl restart kube-scheduler",
        "systemctl restart kubelet",
        "systemctl restart kube-proxy",
    ]
    # The apiserver's /livez answered before the controller-manager restarts.
    assert cp.index("systemctl restart kube-controller-manager") > next(
        i for i, c in enumerate(cp) if "get --raw /livez" in c
    )
    assert "etcd" not in " ".join(restarts)
    worker = [a.line for a in plan.phases[7].steps[0].actions if isinstance(a, Command)]
    assert [c for c in worker if c.startswith("systemctl restart")] == [
        "systemctl restart kubelet",
        "systemctl restart kube-proxy",
    ]
    # Step names carry the node's files' digest: another renewal runs them again.
    assert plan.phases[7].steps[0].name.startswith("restart kubelet kube-proxy ")


def test_join_runs_on_the_new_worker_only_and_refuses_anything_else() -> None:
    cluster = _cluster([WORKERS[1]])
    plan = binary_join.plan(SPEC, _targets(cluster), {}, (cluster, _bundle()))
    assert [p.name for p in plan.phases] == [
        "service user", "upload", "install", "distribute-pki", "units", "start kubelet kube-proxy",
    ]  # fmt: skip
    assert {s.node for p in plan.phases for s in p.steps} == {"w-2"}
    with pytest.raises(InputError, match="joins workers") as refused:
        binary_join.plan(SPEC, [CPS[0].target], {}, (_cluster([CPS[0]]), _bundle()))
    assert refused.value.field == "nodes"
    with pytest.raises(InputError, match="exactly one worker"):
        binary_join.plan(SPEC, [], {}, (_cluster(WORKERS), _bundle()))


def test_upgrade_refuses_skips_downgrades_and_the_same_version_by_name() -> None:
    cluster = _cluster()
    for current, target, said in (
        ("v1.31.2", "v1.33.0", "skips a minor version"),
        ("v1.31.2", "v1.30.9", "no downgrade"),
        ("v1.31.2", "v1.31.2", "nothing to upgrade"),
        ("v1.31.2", "v2.0.0", "skips a minor version"),
    ):
        spec = ClusterSpec("bin", current, "10.244.0.0/16", "10.96.0.0/12", "containerd")
        with pytest.raises(InputError, match=said) as refused:
            binary_upgrade.plan(
                spec, _targets(cluster), {"version": target}, (cluster, _bundle(target))
            )
        assert refused.value.field == "version"
    with pytest.raises(InputError, match=r"bundle holds v1\.32\.1") as refused:
        binary_upgrade.plan(
            SPEC, _targets(cluster), {"version": "1.32.0"}, (cluster, _bundle("v1.32.1"))
        )
    with pytest.raises(InputError) as refused:
        binary_upgrade.validate_params({"version": "v1.32.0", "batch_percent": 5})
    assert refused.value.field == "batch_percent"
    with pytest.raises(InputError) as refused:
        binary_upgrade.validate_params({})
    assert refused.value.field == "version"


def test_upgrade_uploads_everywhere_then_installs_and_restarts_one_node_at_a_time() -> None:
    cluster = _cluster()
    plan = binary_upgrade.plan(
        SPEC, _targets(cluster), {"version": "v1.32.0"}, (cluster, _bundle("v1.32.0"))
    )
    assert [p.name for p in plan.phases] == [
        "plan", "upload",
        "upgrade etcd on cp-1", "upgrade etcd on cp-2", "upgrade etcd on cp-3",
        "upgrade cp-1", "upgrade cp-2", "upgrade cp-3", "upgrade w-1", "upgrade w-2",
        "clean",
    ]  # fmt: skip
    assert plan.phases[0].steps[0].node is None  # the verdict, on the worker
    assert len(plan.phases[1].steps) == 5
    assert all(len(p.steps) == 1 for p in plan.phases[2:-1])
    cp = [a.line for a in plan.phases[5].steps[0].actions if isinstance(a, Command)]
    assert "server/bin/kube-apiserver" in cp[0] and "etcd-v3.5.16" not in cp[0]
    assert "rm -rf /opt/kubernetes/staging\n" not in cp[0] + "\n"  # kept until the end
    first = next(c for c in cp if c.startswith("systemctl restart"))
    assert first == "systemctl restart kube-apiserver"
    assert plan.phases[5].steps[0].name.endswith("v1.32.0")
    etcd = [a.line for a in plan.phases[2].steps[0].actions if isinstance(a, Command)]
    assert "etcd-v3.5.16-linux-amd64/etcd" in etcd[0] and "endpoint health" in etcd[1]
    assert etcd[2] == "systemctl restart etcd"
    assert [s.actions[0].line for s in plan.phases[-1].steps] == [
        "rm -rf /opt/kubernetes/staging"
    ] * 5  # type: ignore[union-attr]


def test_the_backup_copies_only_the_files_that_change(tmp_path: Path) -> None:
    """The backup script run for real (sh), on a copy of a certificate directory."""
    layout = Layout(cert_dir=str(tmp_path / "ssl"), config_dir=str(tmp_path))
    (tmp_path / "ssl").mkdir()
    (tmp_path / "ssl" / "same.pem").write_bytes(b"same\n")
    (tmp_path / "ssl" / "old.pem").write_bytes(b"old\n")
    files = [
        NodeFile(str(tmp_path / "ssl" / "same.pem"), b"same\n", 0o644),
        NodeFile(str(tmp_path / "ssl" / "old.pem"), b"new\n", 0o644),
        NodeFile(str(tmp_path / "ssl" / "fresh.pem"), b"fresh\n", 0o644),
    ]
    command = backup_command(file_writes(layout, files), layout.backup_root)
    done = subprocess.run(["sh", "-c", command.line], capture_output=True, text=True, check=True)
    assert "clusterpanel: 1 replaced files backed up to" in done.stdout
    (stamp,) = (tmp_path / "backup").iterdir()
    copied = [p for p in stamp.rglob("*") if p.is_file()]
    assert [p.name for p in copied] == ["old.pem"] and copied[0].read_bytes() == b"old\n"
    assert oct(stamp.stat().st_mode & 0o777) == "0o700"
