"""The cert-scan recipe: its one script, run here by /bin/sh over a copy of a node's tree, and the
parser of what it prints. No private key ever appears in the output."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from pathlib import Path

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import cert_scan
from nodes.recipes.plan import ClusterSpec, CommandOutput, NodeTarget, StepContext
from pki.domain import x509 as px

SPEC = ClusterSpec("c", "1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _ca() -> tuple[bytes, bytes]:
    key = px.generate_private_key("ECDSA-P256")
    cert = px.create_ca(px.CertSpec("ca", None, "kubernetes", is_ca=True), key, NOW)
    return px.certificate_to_pem(cert), px.private_key_to_pem(key)


def _run_script(tmp_path: Path) -> str:
    """The script with its two roots moved under ``tmp_path`` (the same lines otherwise)."""
    script = cert_scan.scan_script().replace(cert_scan.KUBELET_PKI, f"{tmp_path}/kubelet-pki")
    script = script.replace(cert_scan.ROOT, f"{tmp_path}/etc-kubernetes")
    done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.replace(f"{tmp_path}/etc-kubernetes", cert_scan.ROOT).replace(
        f"{tmp_path}/kubelet-pki", cert_scan.KUBELET_PKI
    )


def test_the_script_prints_certificates_kubeconfig_data_and_key_digests_never_keys(
    tmp_path: Path,
) -> None:
    ca_pem, ca_key = _ca()
    root = tmp_path / "etc-kubernetes"
    (root / "pki" / "etcd").mkdir(parents=True)
    (root / "backup" / "x" / "pki").mkdir(parents=True)
    (root / "pki" / "ca.crt").write_bytes(ca_pem)
    (root / "pki" / "ca.key").write_bytes(ca_key)
    (root / "pki" / "etcd" / "ca.crt").write_bytes(ca_pem)
    (root / "pki" / "sa.key").write_bytes(b"not a key\n")
    (root / "backup" / "x" / "pki" / "ca.crt").write_bytes(ca_pem)
    b64 = base64.b64encode(ca_pem).decode()
    (root / "admin.conf").write_text(
        f"clusters:\n- cluster:\n    certificate-authority-data: {b64}\nusers:\n- user:\n"
        f"    client-certificate-data: {b64}\n    client-key-data: "
        f"{base64.b64encode(ca_key).decode()}\n"
    )
    kubelet = tmp_path / "kubelet-pki"
    kubelet.mkdir()
    # kubelet-client-*.pem holds the kubelet's key beside its certificate.
    (kubelet / "kubelet-client-2026.pem").write_bytes(ca_pem + ca_key)

    out = _run_script(tmp_path)
    assert "PRIVATE KEY" not in out
    assert base64.b64encode(ca_key).decode() not in out
    data = cert_scan.parse_stream(out)
    assert data["complete"]
    assert [c["path"] for c in data["certificates"]] == [
        "/etc/kubernetes/admin.conf:client-certificate-data",
        "/etc/kubernetes/admin.conf:certificate-authority-data",
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/pki/etcd/ca.crt",
        "/var/lib/kubelet/pki/kubelet-client-2026.pem",
    ]
    assert all(c["pem"] == ca_pem.decode() for c in data["certificates"])
    from nodes.health.drift import public_key_digest

    assert data["keys"] == [
        {"path": "/etc/kubernetes/pki/ca.key", "sha256": public_key_digest(ca_key)},
        {"path": "/etc/kubernetes/pki/sa.key", "sha256": cert_scan.UNREADABLE},
    ]
    # The panel's side names the same files the same way.
    bundle = {"pki/ca.crt": ca_pem, "pki/etcd/ca.crt": ca_pem, "pki/ca.key": ca_key,
              "admin.conf": (root / "admin.conf").read_bytes()}  # fmt: skip
    ours = cert_scan.parse_stream(cert_scan.bundle_stream(bundle))["certificates"]
    assert ours == [c for c in data["certificates"] if c["path"].startswith("/etc/")]


def test_parser_skips_odd_sections_and_needs_the_end_marker() -> None:
    text = (
        f"{cert_scan.MARKER} cert /etc/kubernetes/pki/x.crt\ngarbage\n"
        f"{cert_scan.MARKER} kubeconfig /etc/kubernetes/a.conf client-certificate-data\n!!\n"
        f"{cert_scan.MARKER} key /etc/kubernetes/pki/sa.key $(rm)\n"
    )
    data = cert_scan.parse_stream(text)
    assert data == {
        "certificates": [],
        "keys": [{"path": "/etc/kubernetes/pki/sa.key", "sha256": "unreadable"}],
        "complete": False,
    }
    context = StepContext("n", (CommandOutput(0, text, "", 0, 1),), {})
    assert cert_scan.read_scan(context).status == "failed"


def test_plan_is_one_read_only_command_per_node_and_takes_no_parameters() -> None:
    nodes = [NodeTarget("cp-1", "10.0.0.1", "control-plane"), NodeTarget("w", "10.0.0.2", "worker")]
    plan = cert_scan.plan(SPEC, nodes, {})
    (phase,) = plan.phases
    assert phase.continue_on_failure and not cert_scan.MUTATING
    assert [(s.node, len(s.actions)) for s in phase.steps] == [("cp-1", 1), ("w", 1)]
    with pytest.raises(InputError) as error:
        cert_scan.validate_params({"x": 1})
    assert error.value.field == "x"
