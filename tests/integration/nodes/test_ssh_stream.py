"""Streamed uploads (``Session.upload_stream``, the executor's ``FileStream``) against a real sshd
test host (tests/hosts.py): a 64 MiB file with bounded memory, its digest checked on the host,
an interrupted or short upload leaving nothing behind, and a second run sending nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from nodes import ssh
from nodes.executor import execute
from nodes.recipes.plan import FileStream, Outcome, Phase, Plan, Step
from tests import hosts
from tests.hosts import TestHost

# nodes.ssh and the executor are the engine's: no Django, no database.
pytestmark = pytest.mark.no_database

SIZE = 64 << 20
DIRECTORY = "/etc/kubernetes/stream"


def _random_file(path: Path, size: int) -> str:
    """``size`` random bytes at ``path``, written a MiB at a time; returns their sha256."""
    hashed = hashlib.sha256()
    with path.open("wb") as handle:
        for _ in range(size // (1 << 20)):
            block = os.urandom(1 << 20)
            hashed.update(block)
            handle.write(block)
    return hashed.hexdigest()


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class _Handle:
    def __init__(self) -> None:
        self.panel: list[bytes] = []

    def output(self, stream: str, data: bytes) -> None:
        if stream == "panel":
            self.panel.append(data)

    def finish(self, outcome: Outcome, exit_code: int | None) -> None:
        self.outcome = outcome


class _Reporter:
    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.handle = _Handle()

    def planned(self, plan: Plan) -> None:
        pass

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        return None

    def start_step(self, phase: str, step: str, node: str | None) -> _Handle:
        return self.handle

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        raise AssertionError(f"skipped: {reason}")


def test_a_large_file_streams_with_bounded_memory_and_is_never_left_half_written(
    test_hosts: list[TestHost], ssh_client_key: str, tmp_path: Path
) -> None:
    host = test_hosts[3]
    credential = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=ssh_client_key)
    source = tmp_path / "kubernetes-server-v1.31.2-linux-amd64.tar.gz"
    digest = _random_file(source, SIZE)
    path = f"{DIRECTORY}/{source.name}"
    local = host.bind_dir("/etc/kubernetes") / "stream"
    try:
        with ssh.Session.open(host.target(credential)) as session:
            # 1. 64 MiB through sudo: the memory this process allocates stays a few MiB.
            progress: list[tuple[int, int]] = []
            rss_before = _rss()
            tracemalloc.start()
            started = time.monotonic()
            with source.open("rb") as handle:
                result = session.upload_stream(
                    path, handle, SIZE, sha256=digest, mode=0o640, group=hosts.SUDO_NOPASSWD_USER,
                    on_progress=lambda sent, total: progress.append((sent, total)),
                )  # fmt: skip
            seconds = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss_growth = _rss() - rss_before
            print(
                f"streamed {SIZE >> 20} MiB in {seconds:.1f} s: tracemalloc peak "
                f"{peak / (1 << 20):.2f} MiB, RSS growth {rss_growth / (1 << 20):.1f} MiB"
            )
            assert result.exit_code == 0
            assert peak < SIZE / 16, f"peak {peak} bytes while streaming {SIZE}"
            assert rss_growth < SIZE / 4
            assert len(progress) == 10 and progress[-1] == (SIZE, SIZE)
            assert [p * 10 // SIZE for p, _ in progress] == list(range(1, 11))
            on_host = host.run_local(f"sha256sum {local / source.name}").stdout.split()[0]
            assert on_host == digest
            stat = host.run_local(f"stat -c '%a %U %G %s' {local / source.name}").stdout
            assert stat == f"640 root {hosts.SUDO_NOPASSWD_USER} {SIZE}\n"

            # 2. Cancelled at a third: no file at the target, no temp file beside it.
            cancel = threading.Event()

            def stop_at_a_third(sent: int, total: int) -> None:
                if sent * 3 >= total:
                    cancel.set()

            with source.open("rb") as handle:
                stopped = session.upload_stream(
                    f"{DIRECTORY}/cancelled.tgz", handle, SIZE, sha256=digest, mode=0o644,
                    on_progress=stop_at_a_third, cancel=cancel,
                )  # fmt: skip
            assert stopped.cancelled
            # 3. A source shorter than it claims (it shrank after the plan): refused on the host.
            with pytest.raises(ssh.SSHError) as short:
                session.upload_stream(
                    f"{DIRECTORY}/short.tgz", io.BytesIO(b"x" * 1000), 2000, sha256=digest,
                    mode=0o644,
                )  # fmt: skip
            assert f"received 1000 bytes with sha256 {hashlib.sha256(b'x' * 1000).hexdigest()}" in (
                str(short.value)
            )
            assert f"expected 2000 bytes with sha256 {digest}" in str(short.value)
            # 4. A cut connection mid-file: the host gets EOF early, the digest differs.
            with source.open("rb") as handle, pytest.raises(ssh.SSHError):
                session.upload_stream(
                    f"{DIRECTORY}/cut.tgz", _Cut(handle, session, SIZE // 4), SIZE,
                    sha256=digest, mode=0o644,
                )  # fmt: skip
        time.sleep(0.5)  # the host's shell of the cut command removes its temp file
        assert sorted(p.name for p in local.iterdir()) == [source.name]

        # 5. Through the executor: the node holds the file already, so nothing is sent; a new
        # path is sent (one command streams it) and logged with its progress.
        received = len(host.received_commands())
        again = FileStream(path, str(source), SIZE, digest, 0o640, group=hosts.SUDO_NOPASSWD_USER)
        other = FileStream(f"{DIRECTORY}/copy.tgz", str(source), SIZE, digest, 0o644)
        reporter = _Reporter()
        plan = Plan("demo", (Phase("upload", (Step("upload", host.name, (again, other)),)),))
        execution = execute(plan, {host.name: host.target(credential)}, reporter)
        assert execution.status == "succeeded", execution.explanation
        commands = host.received_commands()[received:]
        assert sum("sha256sum <" in c and "cat >" not in c for c in commands) == 2  # compares
        (streamed,) = [c for c in commands if "cat >" in c]
        assert "copy.tgz" in streamed and source.name not in streamed
        log = b"".join(reporter.handle.panel).decode().splitlines()
        assert log[0].startswith(f"unchanged {path} mode 0640 owner root:")
        assert log[0].endswith(": nothing sent")
        assert log[1].startswith(f"sending {DIRECTORY}/copy.tgz from {source} on the panel host")
        assert log[-2] == f"sent {SIZE} of {SIZE} bytes (100%)"
        assert log[-1].startswith(f"wrote {DIRECTORY}/copy.tgz mode 0644 owner root:root")
        assert hashlib.sha256((local / "copy.tgz").read_bytes()).hexdigest() == digest
    finally:
        shutil.rmtree(local, ignore_errors=True)  # the shared host's /etc/kubernetes stays empty


class _Cut:
    """A source that closes the SSH connection after ``after`` bytes (a network drop)."""

    def __init__(self, handle: io.BufferedReader, session: ssh.Session, after: int) -> None:
        self.handle, self.session, self.after, self.read_so_far = handle, session, after, 0

    def read(self, size: int = -1, /) -> bytes:
        if self.read_so_far >= self.after:
            self.session._transport.close()
            return b""
        chunk = self.handle.read(size)
        self.read_so_far += len(chunk)
        return chunk
