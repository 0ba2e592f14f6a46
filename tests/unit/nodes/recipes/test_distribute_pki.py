"""The distribute-pki recipe's plan: the bundle's files with their modes, keys secret, the backup
of replaced files (run for real on a copy), and no CA key for a worker."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import distribute_pki as dp
from nodes.recipes.plan import MASK, ClusterSpec, Command, FileWrite, NodeTarget

CLUSTER = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
CP = NodeTarget("cp-1", "10.0.0.11", "control-plane")
WORKER = NodeTarget("w-1", "10.0.0.21", "worker")
KEY = b"-----BEGIN RSA PRIVATE KEY-----\nsecret-ca-key\n-----END RSA PRIVATE KEY-----\n"
CP_FILES = {
    "pki/ca.crt": dp.BundleFile(b"ca cert\n", 0o644),
    "pki/ca.key": dp.BundleFile(KEY, 0o600),
    "admin.conf": dp.BundleFile(b"kubeconfig with client-key-data\n", 0o600),
}
WORKER_FILES = {
    "pki/ca.crt": dp.BundleFile(b"ca cert\n", 0o644),
    "kubelet.conf": dp.BundleFile(b"kubelet kubeconfig\n", 0o600),
}


def test_each_file_under_etc_kubernetes_with_its_mode_and_keys_secret() -> None:
    plan = dp.plan(CLUSTER, [CP, WORKER], {}, {"cp-1": CP_FILES, "w-1": WORKER_FILES})
    (phase,) = plan.phases
    assert [(s.name, s.node) for s in phase.steps] == [(dp.STEP, "cp-1"), (dp.STEP, "w-1")]
    backup, *writes = phase.steps[0].actions
    assert isinstance(backup, Command)
    assert all(isinstance(w, FileWrite) and w.skip_if_identical for w in writes)
    found = {w.path: (w.mode, w.secret) for w in writes if isinstance(w, FileWrite)}
    assert found == {
        "/etc/kubernetes/admin.conf": (0o600, True),
        "/etc/kubernetes/pki/ca.crt": (0o644, False),
        "/etc/kubernetes/pki/ca.key": (0o600, True),
    }
    preview = json.dumps(plan.preview())
    assert "secret-ca-key" not in preview and "client-key-data" not in preview
    assert hashlib.sha256(KEY).hexdigest() in preview and MASK in preview
    assert "ca.key" not in json.dumps(plan.preview()["phases"][0]["steps"][1])


def test_a_ca_key_for_a_worker_or_a_path_outside_is_refused() -> None:
    with pytest.raises(ValueError, match="CA keys go to control-plane nodes only"):
        dp.plan(CLUSTER, [WORKER], {}, {"w-1": CP_FILES})
    etcd = NodeTarget("etcd-1", "10.0.0.31", "etcd")
    with pytest.raises(ValueError, match=r"pki/etcd/ca\.key"):
        dp.plan(CLUSTER, [etcd], {}, {"etcd-1": {"pki/etcd/ca.key": dp.BundleFile(KEY, 0o600)}})
    for path in ("../passwd", "/etc/shadow", "pki/../../x", "backup/x"):
        with pytest.raises(ValueError, match="bad path"):
            dp.plan(CLUSTER, [CP], {}, {"cp-1": {path: dp.BundleFile(b"x", 0o644)}})
    with pytest.raises(InputError, match="no bundle"):
        dp.plan(CLUSTER, [CP], {}, {})
    with pytest.raises(InputError) as error:
        dp.validate_params({"force": True})
    assert error.value.field == "force"


def test_the_backup_keeps_only_files_that_exist_and_differ(tmp_path: Path) -> None:
    root = tmp_path / "kubernetes"
    (root / "pki").mkdir(parents=True)
    (root / "pki/ca.crt").write_bytes(b"ca cert\n")  # identical: kept as it is
    (root / "pki/ca.key").write_bytes(b"an older key\n")  # differs: backed up
    (root / "pki/ca.key").chmod(0o600)
    step = dp.node_step(CP, CP_FILES)
    backup = step.actions[0]
    assert isinstance(backup, Command)
    script = backup.line.replace("/etc/kubernetes", str(root))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert "1 replaced files backed up to" in done.stdout
    (dated,) = (root / "backup").iterdir()
    assert [p.relative_to(dated).as_posix() for p in dated.rglob("*") if p.is_file()] == [
        "pki/ca.key"
    ]
    assert (dated / "pki/ca.key").read_bytes() == b"an older key\n"
    assert (dated / "pki/ca.key").stat().st_mode & 0o777 == 0o600
    assert (root / "backup").stat().st_mode & 0o777 == 0o700
    (root / "pki/ca.key").write_bytes(KEY)
    again = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert "no file to replace" in again.stdout
