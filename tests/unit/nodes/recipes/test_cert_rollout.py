"""The cert-rollout recipe's plan: one phase per control-plane node in order, the exact order of
writes, manifest moves, kubelet restart and checks, workers last with kubelet.conf only, and no
secret in any command line. The restart and mark scripts also run here for real against a
directory standing in for /etc/kubernetes, with a crictl stand-in that lists a container while
its manifest is in place (what the kubelet does with a static pod)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import cert_rollout as cr
from nodes.recipes.distribute_pki import BundleFile
from nodes.recipes.plan import Command, CommandOutput, FileWrite, NodeTarget, StepContext
from tests.unit.nodes.recipes.test_distribute_pki import CLUSTER

KEY = b"-----BEGIN EC PRIVATE KEY-----\nsecret-apiserver-key\n-----END EC PRIVATE KEY-----\n"
CP1 = NodeTarget("cp-1", "10.0.0.11", "control-plane")
CP2 = NodeTarget("cp-2", "10.0.0.12", "control-plane")
WORKER = NodeTarget("w-1", "10.0.0.21", "worker")
ETCD = NodeTarget("etcd-1", "10.0.0.31", "etcd")
CP_FILES = {
    "pki/ca.crt": BundleFile(b"ca\n", 0o644),
    "pki/apiserver.crt": BundleFile(b"new apiserver cert\n", 0o644),
    "pki/apiserver.key": BundleFile(KEY, 0o600),
    "kubelet.conf": BundleFile(b"kubelet kubeconfig client-key-data\n", 0o600),
}
INPUTS = {
    "cp-1": cr.NodeRollout(CP_FILES, "0A1B2C3D4E5F60718293"),
    "cp-2": cr.NodeRollout(CP_FILES, "7F00FF"),
    "w-1": cr.NodeRollout({**CP_FILES, "kubelet.conf": BundleFile(b"w kubelet\n", 0o600)}),
}


def _commands(step: cr.Step) -> list[str]:
    return [a.line for a in step.actions if isinstance(a, Command)]


def test_one_phase_per_control_plane_node_in_order_then_the_workers() -> None:
    plan = cr.plan(CLUSTER, [CP1, CP2, WORKER, ETCD], {}, INPUTS)
    assert [p.name for p in plan.phases] == ["roll out cp-1", "roll out cp-2", "workers"]
    (cp1,) = plan.phases[0].steps
    assert cp1.node == "cp-1"
    assert cp1.name == "new certificates (apiserver serial 0A1B2C3D4E5F6071)"
    kinds = [type(a).__name__ for a in cp1.actions]
    assert kinds == ["Command", "Command"] + ["FileWrite"] * 4 + ["Command"] * 7
    mark, backup, *rest = cp1.actions
    assert isinstance(mark, Command) and "mark /etc/kubernetes/pki/apiserver.crt" in mark.line
    assert isinstance(backup, Command) and "/etc/kubernetes/backup/" in backup.line
    writes = [a for a in rest if isinstance(a, FileWrite)]
    assert [(w.path, w.mode, w.secret, w.skip_if_identical) for w in writes] == [
        ("/etc/kubernetes/kubelet.conf", 0o600, True, True),
        ("/etc/kubernetes/pki/apiserver.crt", 0o644, False, True),
        ("/etc/kubernetes/pki/apiserver.key", 0o600, True, True),
        ("/etc/kubernetes/pki/ca.crt", 0o644, False, True),
    ]
    restarts = _commands(cp1)[2:6]
    for component, line in zip(cr.STATIC_PODS, restarts, strict=True):
        out = f"mv /etc/kubernetes/manifests/{component}.yaml /etc/kubernetes/manifests-rollout/"
        back = f"mv /etc/kubernetes/manifests-rollout/{component}.yaml /etc/kubernetes/manifests/"
        gone = f'until [ -z "$(crictl ps --name {component} -q)" ]'
        running = f'until [ -n "$(crictl ps --name {component} -q)" ]'
        at = [line.index(s) for s in (out, gone, back, running)]
        assert at == sorted(at), component
    kubelet, livez, serial = _commands(cp1)[6:]
    assert "systemctl restart kubelet" in kubelet
    assert "curl --cacert /etc/kubernetes/pki/ca.crt -sf https://10.0.0.11:6443/livez" in livez
    assert "openssl s_client -connect 10.0.0.11:6443 </dev/null" in serial
    assert "= A1B2C3D4E5F60718293 ]" in serial  # leading zeros dropped, as openssl compared
    # Every wait is bounded in the shell, and the SSH timeout outlasts it.
    for action in cp1.actions:
        if isinstance(action, Command) and "until" in action.line:
            assert f"+ {cr.DEFAULT_WAIT}))" in action.line
            assert action.timeout > cr.DEFAULT_WAIT

    (worker,) = plan.phases[2].steps
    assert worker.node == "w-1" and worker.name.startswith("kubelet.conf ")
    assert [a.path for a in worker.actions if isinstance(a, FileWrite)] == [
        "/etc/kubernetes/kubelet.conf"
    ]
    assert not any("crictl" in line or "curl" in line for line in _commands(worker))


def test_no_secret_in_any_command_and_the_preview_masks_keys() -> None:
    plan = cr.plan(CLUSTER, [CP1, CP2, WORKER], {"wait_seconds": 30}, INPUTS)
    lines = [line for phase in plan.phases for step in phase.steps for line in _commands(step)]
    assert lines and not [line for line in lines if "secret-apiserver-key" in line]
    assert not [line for line in lines if "client-key-data" in line]
    preview = json.dumps(plan.preview())
    assert "secret-apiserver-key" not in preview and "client-key-data" not in preview
    assert all(isinstance(a, Command) or a.secret or not a.path.endswith(".key")
               for p in plan.phases for s in p.steps for a in s.actions)  # fmt: skip


def test_external_etcd_restarts_no_etcd_pod_and_params_are_checked() -> None:
    external = CLUSTER.__class__(**{**CLUSTER.__dict__, "etcd_topology": "external"})
    plan = cr.plan(external, [CP1], {}, INPUTS)
    lines = _commands(plan.phases[0].steps[0])
    assert not [line for line in lines if "manifests/etcd.yaml" in line]
    for bad in ({"wait_seconds": 0}, {"wait_seconds": "5"}, {"wait_seconds": True}, {"x": 1}):
        with pytest.raises(InputError) as caught:
            cr.validate_params(bad)
        assert caught.value.field in {"wait_seconds", "x"}
    with pytest.raises(InputError, match="cp-2 has no certificates"):
        cr.plan(CLUSTER, [CP2], {}, {})
    with pytest.raises(ValueError, match="CA keys"):
        cr.control_plane_phase(
            WORKER, cr.NodeRollout({"pki/ca.key": BundleFile(KEY, 0o600)}, "AB"), True, 5
        )


def _sh(line: str, root: Path, bindir: Path) -> subprocess.CompletedProcess[str]:
    rooted = line.replace("/etc/kubernetes", str(root))
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "ROOT": str(root)}
    return subprocess.run(["sh", "-c", rooted], capture_output=True, text=True, env=env, timeout=30)


def test_the_scripts_restart_only_what_reads_a_changed_file_and_owe_it_until_done(
    tmp_path: Path,
) -> None:
    root, bindir = tmp_path / "k", tmp_path / "bin"
    (root / "manifests").mkdir(parents=True)
    (root / "pki").mkdir()
    bindir.mkdir()
    for component in cr.STATIC_PODS:
        (root / "manifests" / f"{component}.yaml").write_text(f"{component}\n")
    # crictl: a container runs while the kubelet sees its manifest; "stuck" keeps it running.
    crictl = bindir / "crictl"
    crictl.write_text(
        '#!/bin/sh\necho "$*" >> "$ROOT/../crictl.log"\n'
        '[ -e "$ROOT/../stuck" ] && { echo c0ffee; exit 0; }\n'
        '[ -e "$ROOT/manifests/$3.yaml" ] && echo c0ffee\nexit 0\n'
    )
    crictl.chmod(0o755)
    (root / "pki" / "apiserver.crt").write_bytes(b"old apiserver cert\n")
    (root / "pki" / "ca.crt").write_bytes(b"ca\n")
    step = cr.plan(CLUSTER, [CP1], {"wait_seconds": 2}, INPUTS).phases[0].steps[0]
    mark, _, *_ = step.actions
    assert isinstance(mark, Command)
    done = _sh(mark.line, root, bindir)
    assert done.returncode == 0, done.stderr
    # apiserver.* and kubelet.conf changed (ca.crt did not): apiserver and kubelet are owed.
    assert sorted(p.name for p in (root / "manifests-rollout" / "pending").iterdir()) == [
        "kube-apiserver",
        "kubelet",
    ]
    etcd, apiserver = cr.restart_static_pod("etcd", 2), cr.restart_static_pod("kube-apiserver", 2)
    assert "not restarted" in _sh(etcd.line, root, bindir).stdout

    (tmp_path / "stuck").touch()
    stuck = _sh(apiserver.line, root, bindir)
    assert stuck.returncode == 1
    assert "still running 2 s after its manifest was moved out" in stuck.stderr
    assert (root / "manifests" / "kube-apiserver.yaml").exists()  # put back
    assert (root / "manifests-rollout" / "pending" / "kube-apiserver").exists()  # still owed

    (tmp_path / "stuck").unlink()
    again = _sh(apiserver.line, root, bindir)
    assert again.returncode == 0 and "kube-apiserver restarted" in again.stdout, again.stderr
    assert (root / "manifests" / "kube-apiserver.yaml").read_text() == "kube-apiserver\n"
    assert not (root / "manifests-rollout" / "pending" / "kube-apiserver").exists()
    log = (tmp_path / "crictl.log").read_text().splitlines()
    assert log[-2:] == ["ps --name kube-apiserver -q", "ps --name kube-apiserver -q"]


def test_a_failed_command_names_why_from_the_panels_own_line() -> None:
    def out(code: int, stderr: str = "", stdout: str = "") -> CommandOutput:
        return CommandOutput(code, stdout, stderr, 0.0, 1.0)

    failed = cr.read(StepContext("cp-2", (
        out(0, stdout="clusterpanel: kube-apiserver restarted\n"),
        out(1, "curl: (7) no\nclusterpanel: the apiserver at https://10.0.0.12:6443/livez did "
               "not answer /livez within 5 s\n"),
    ), {}))  # fmt: skip
    assert failed.status == "failed"
    assert failed.message == (
        "the apiserver at https://10.0.0.12:6443/livez did not answer /livez within 5 s"
    )
    ok = cr.read(StepContext("cp-1", (out(0, stdout="clusterpanel: kubelet restarted\n"),), {}))
    assert ok.status == "succeeded" and ok.message == "kubelet restarted"
