"""The pure helpers of bench/provision.py: how it counts what a host received, and phase spans."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench import provision
from nodes import ssh
from nodes.recipes.plan import FileWrite


def _upload_line(path: str) -> str:
    """The command ``ssh.Session.upload`` sends for one file (no connection made)."""
    sent: list[str] = []

    def run(script: str, **_: Any) -> SimpleNamespace:
        sent.append(script)
        return SimpleNamespace(exit_code=0)

    session = ssh.Session.__new__(ssh.Session)
    session.run = run  # type: ignore[method-assign]
    session.upload(path, b"data", mode=0o600)
    (line,) = sent
    return line


def _batch_upload_line() -> str:
    """The command ``ssh.Session.upload_files`` sends for several files (no connection made)."""
    sent: list[str] = []

    def run(line: str, **_: Any) -> SimpleNamespace:
        sent.append(line)
        return SimpleNamespace(exit_code=0, stdout=b"", stderr=b"", timed_out=False)

    session = ssh.Session.__new__(ssh.Session)
    session.run = run  # type: ignore[method-assign]
    session.target = SimpleNamespace(name="node-1")  # type: ignore[assignment]
    files = [ssh.Upload(f"/etc/kubernetes/f{i}", b"x", mode=0o600) for i in range(2)]
    with pytest.raises(ssh.SSHError):  # nothing was written: the stand-in printed nothing
        session.upload_files(files)
    (line,) = sent
    return line


def test_classify_tells_file_writes_and_identical_checks_from_other_commands() -> None:
    check = FileWrite("/etc/kubernetes/pki/ca.crt", b"x", skip_if_identical=True).identical_check()
    received = [
        check,
        _upload_line("/etc/kubernetes/pki/ca.crt"),
        _upload_line("/etc/kubernetes/admin.conf"),
        _batch_upload_line(),
        "kubeadm init --config /etc/kubernetes/kubeadm-init.yaml",
    ]
    assert provision.classify(received) == (3, 1, 1)
    assert provision.classify([]) == (0, 0, 0)


def test_phase_spans_and_roles() -> None:
    steps = [("probe", 0.0, 1.0), ("probe", 0.5, 2.5), ("pki", 3.0, 4.0), ("probe", 0.2, 0.3)]
    assert provision.phase_spans(steps) == {"probe": 2.5, "pki": 1.0}
    assert list(provision.phase_spans(steps)) == ["probe", "pki"]
    assert provision.roles(3) == ["control-plane"] * 3
    assert provision.roles(5) == ["control-plane"] * 3 + ["worker"] * 2
    with pytest.raises(ValueError, match="at least 3"):
        provision.roles(2)
