"""The executor: phases, fan-out, sessions, retry reuse, cancel, deadline and its sentences.

Commands run for real, with the local ``sh``, through ``LocalSession``: it stands in for
``nodes.ssh.Session`` (same ``run``/``upload``/``close`` signatures) so these tests need no SSH
server. The real SSH session is covered by the ssh module's integration tests against real
sshd test hosts (``tests/hosts.py``).
"""

from __future__ import annotations

import getpass
import grp
import hashlib
import io
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nodes import ssh
from nodes.executor import CANCELLED_REASON, PREVIOUS_REASON, Execution, execute
from nodes.recipes import facts, preflight
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    FileStream,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

Key = tuple[str, str, "str | None"]


class LocalSession:
    """A stand-in for ``ssh.Session`` that runs each line with the local ``sh`` (own process
    group, streamed output, timeout and cancel like the real one) and uploads under a temp dir."""

    def __init__(self, target: ssh.Target, root: Path, fail_on: str | None = None) -> None:
        self.target, self.root, self.fail_on = target, root / target.name, fail_on
        self.root.mkdir(parents=True, exist_ok=True)
        self.closed = False
        self.lines: list[str] = []
        self.batches: list[list[str]] = []  # the paths of each upload_files call
        self.streamed: list[str] = []  # the paths of each upload_stream call

    def run(
        self,
        line: str,
        *,
        timeout: float,
        stdin: bytes | None = None,
        on_output: Callable[[str, bytes], None] | None = None,
        cancel: threading.Event | None = None,
        capture_limit: int = 1 << 20,
    ) -> ssh.Result:
        assert not self.closed, "a closed session was used"
        self.lines.append(line)
        if self.fail_on is not None and self.fail_on in line:
            raise ssh.SSHError(f"the connection to {self.target.name} was lost")
        started = time.time()
        env = {**os.environ, "NODE": self.target.name, "ROOT": str(self.root)}
        process = subprocess.Popen(
            ["sh", "-c", line],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        assert process.stdin and process.stdout and process.stderr
        process.stdin.write(stdin or b"")
        process.stdin.close()
        captured: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

        def pump(stream: str, pipe: Any) -> None:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                captured[stream] += chunk
                if on_output is not None:
                    on_output(stream, chunk)

        pumps = [
            threading.Thread(target=pump, args=("stdout", process.stdout)),
            threading.Thread(target=pump, args=("stderr", process.stderr)),
        ]
        for thread in pumps:
            thread.start()
        timed_out = cancelled = False
        while process.poll() is None:
            if cancel is not None and cancel.is_set():
                cancelled = True
            elif time.time() - started > timeout:
                timed_out = True
            if cancelled or timed_out:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                break
            time.sleep(0.01)
        for thread in pumps:
            thread.join()
        return ssh.Result(
            exit_code=None if (timed_out or cancelled) else process.returncode,
            stdout=bytes(captured["stdout"]),
            stderr=bytes(captured["stderr"]),
            stdout_bytes=len(captured["stdout"]),
            stderr_bytes=len(captured["stderr"]),
            started_at=started,
            finished_at=time.time(),
            timed_out=timed_out,
            cancelled=cancelled,
        )

    def upload(
        self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root",
        timeout: float = 60.0,
    ) -> None:  # fmt: skip
        assert not self.closed
        destination = self.root / path.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)
        destination.chmod(mode)

    def upload_files(
        self,
        files: list[ssh.Upload],
        *,
        timeout: float = 60.0,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.batches.append([f.path for f in files])
        for index, file in enumerate(files):
            self.upload(file.path, file.content, mode=file.mode, timeout=timeout)
            if on_written is not None:
                on_written(index)

    def upload_stream(
        self, path: str, source: Any, size: int, *, sha256: str, mode: int, owner: str = "root",
        group: str = "root", timeout: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ssh.Result:  # fmt: skip
        """Copies in chunks through ``nodes.ssh``'s own counting reader, checks the digest."""
        assert not self.closed
        self.streamed.append(path)
        reader = ssh._Counted(source, size, on_progress)
        hashed, data = hashlib.sha256(), bytearray()
        for chunk in iter(lambda: reader.read(ssh.STREAM_CHUNK), b""):
            hashed.update(chunk)
            data += chunk
        if hashed.hexdigest() != sha256:
            raise ssh.SSHError(f"writing {path} on {self.target.name} failed: digest differs")
        self.upload(path, bytes(data), mode=mode)
        return ssh.Result(0, b"", b"", 0, 0, time.time(), time.time())

    def close(self) -> None:
        self.closed = True


class Hosts:
    """``connect`` for the executor: one LocalSession per call, every one remembered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sessions: list[LocalSession] = []
        self.unreachable: set[str] = set()
        self.fail_on: dict[str, str] = {}
        self.lock = threading.Lock()

    def connect(self, target: ssh.Target) -> ssh.Session:
        if target.name in self.unreachable:
            raise ssh.SSHError(f"cannot connect to {target.address}:22: connection refused")
        session = LocalSession(target, self.root, self.fail_on.get(target.name))
        with self.lock:
            self.sessions.append(session)
        return session  # type: ignore[return-value]

    def opened(self, name: str) -> int:
        return sum(session.target.name == name for session in self.sessions)


@dataclass
class Handle:
    reporter: Recorder
    key: Key
    started: float
    output_chunks: list[tuple[str, bytes]] = field(default_factory=list)

    def output(self, stream: str, data: bytes) -> None:
        with self.reporter.lock:
            self.output_chunks.append((stream, data))

    def finish(self, outcome: Outcome, exit_code: int | None) -> None:
        with self.reporter.lock:
            self.reporter.finished[self.key] = (outcome, exit_code, self.started, time.monotonic())


class Recorder:
    """A reporter that records what the executor told it (thread-safe, as the real one)."""

    def __init__(self, previous: Mapping[Key, Outcome] | None = None) -> None:
        self.cancel_event = threading.Event()
        self.lock = threading.Lock()
        self.plan: Plan | None = None
        self.earlier = dict(previous or {})
        self.handles: dict[Key, Handle] = {}
        self.finished: dict[Key, tuple[Outcome, int | None, float, float]] = {}
        self.skipped: dict[Key, str] = {}
        self.on_start: Callable[[Key], None] | None = None

    def planned(self, plan: Plan) -> None:
        self.plan = plan

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        return self.earlier.get((phase, step, node))

    def start_step(self, phase: str, step: str, node: str | None) -> Handle:
        key = (phase, step, node)
        if self.on_start is not None:
            self.on_start(key)
        handle = Handle(self, key, time.monotonic())
        with self.lock:
            self.handles[key] = handle
        return handle

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        with self.lock:
            self.skipped[(phase, step, node)] = reason

    def stdout(self, key: Key) -> bytes:
        return b"".join(
            data for stream, data in self.handles[key].output_chunks if stream == "stdout"
        )


def targets(*names: str) -> dict[str, ssh.Target]:
    return {
        name: ssh.Target(name, f"127.0.1.{i}", 22, ssh.Credential("root"), None)
        for i, name in enumerate(names, start=1)
    }


def run(
    plan: Plan, names: tuple[str, ...], hosts: Hosts, reporter: Recorder, **options: Any
) -> Execution:
    return execute(plan, targets(*names), reporter, connect=hosts.connect, **options)


def one_phase(line: str, names: tuple[str, ...], name: str = "work") -> Plan:
    return Plan("demo", (Phase(name, tuple(Step("step", n, (Command(line),)) for n in names)),))


NODES = ("n1", "n2", "n3")


@pytest.fixture
def hosts(tmp_path: Path) -> Hosts:
    return Hosts(tmp_path)


def test_fan_out_never_runs_more_hosts_at_once_than_max_parallel(hosts: Hosts) -> None:
    names = tuple(f"n{i}" for i in range(6))
    reporter = Recorder()
    result = run(one_phase("sleep 0.3", names), names, hosts, reporter, max_parallel=2)
    assert result.status == "succeeded"
    spans = [(start, end) for _, _, start, end in reporter.finished.values()]
    most = max(sum(s <= moment < e for s, e in spans) for moment, _ in spans)
    assert most == 2  # bounded, and parallel (one at a time would be 1)


def test_steps_of_one_node_run_in_plan_order_in_one_session(hosts: Hosts) -> None:
    steps = tuple(
        Step(name, node, (Command(f'echo {name} >> "$ROOT/log"; sleep 0.05'),))
        for node in NODES
        for name in ("first", "second", "third")
    )
    reporter = Recorder()
    plan = Plan(
        "demo", (Phase("one", steps), Phase("two", (Step("last", "n1", (Command("true"),)),)))
    )
    result = run(plan, NODES, hosts, reporter)
    assert result.status == "succeeded"
    for node in NODES:
        assert (hosts.root / node / "log").read_text().split() == ["first", "second", "third"]
        assert hosts.opened(node) == 1
    ends = {key: (start, end) for key, (_, _, start, end) in reporter.finished.items()}
    assert ends[("one", "first", "n2")][1] <= ends[("one", "second", "n2")][0]
    (n1,) = [s for s in hosts.sessions if s.target.name == "n1"]
    assert len(n1.lines) == 4  # the later phase reused the session
    assert all(session.closed for session in hosts.sessions)


def test_a_failing_node_does_not_stop_the_others_and_the_sentence_names_it(hosts: Hosts) -> None:
    reporter = Recorder()
    plan = one_phase('[ "$NODE" != n2 ] || exit 3; echo ok', NODES)
    result = run(plan, NODES, hosts, reporter)
    assert result.status == "failed"
    assert result.explanation == "demo failed on n2: exited with code 3"
    assert reporter.finished[("work", "step", "n2")][1] == 3
    for node in ("n1", "n3"):
        assert result.outcomes[("work", "step", node)].status == "succeeded"
        assert reporter.stdout(("work", "step", node)) == b"ok\n"


def test_more_failures_are_counted_in_the_sentence(hosts: Hosts) -> None:
    result = run(one_phase("exit 1", NODES), NODES, hosts, Recorder())
    assert result.explanation == "demo failed on n1: exited with code 1; 2 more steps failed"


def test_a_later_phase_is_skipped_after_a_failed_phase_unless_it_continues(hosts: Hosts) -> None:
    def plan(continue_on_failure: bool) -> Plan:
        first = Phase("gather", (Step("s", "n1", (Command("exit 1"),)),), continue_on_failure)
        later = Phase("apply", (Step("t", "n1", (Command('touch "$ROOT/applied"'),)),))
        return Plan("demo", (first, later))

    reporter = Recorder()
    run(plan(False), ("n1",), hosts, reporter)
    assert reporter.skipped == {("apply", "t", "n1"): "the gather phase failed"}
    assert not (hosts.root / "n1" / "applied").exists()

    reporter = Recorder()
    run(plan(True), ("n1",), hosts, reporter)
    assert reporter.skipped == {}
    assert (hosts.root / "n1" / "applied").exists()


def test_steps_that_succeeded_in_the_retried_attempt_are_skipped_and_their_outcome_reused(
    hosts: Hosts,
) -> None:
    seen: dict[Key, Outcome] = {}

    def verdict(context: StepContext) -> Outcome:
        seen.update(context.earlier)
        return Outcome("succeeded", "2 nodes agree")

    steps = tuple(Step("s", n, (Command(f'touch "$ROOT/ran"; echo {n}'),)) for n in ("n1", "n2"))
    plan = Plan("demo", (Phase("p", steps), Phase("v", (Step("verdict", None, (), verdict),))))
    before = Outcome("succeeded", "done before", {"x": 1})
    reporter = Recorder({("p", "s", "n1"): before})
    result = run(plan, ("n1", "n2"), hosts, reporter)
    assert reporter.skipped == {("p", "s", "n1"): PREVIOUS_REASON}
    assert not (hosts.root / "n1" / "ran").exists() and hosts.opened("n1") == 0
    assert (hosts.root / "n2" / "ran").exists()
    assert seen[("p", "s", "n1")] is before
    assert result.outcomes[("p", "s", "n1")] is before
    assert result.explanation == "2 nodes agree"  # a final worker step's sentence summarises


def test_cancel_stops_the_running_command_and_starts_no_new_step(hosts: Hosts) -> None:
    steps = tuple(Step(name, "n1", (Command("sleep 30"),)) for name in ("a", "b", "c"))
    plan = Plan("demo", (Phase("p", steps), Phase("q", (Step("d", "n1", (Command("true"),)),))))
    reporter = Recorder()
    threading.Timer(0.3, reporter.cancel_event.set).start()
    began = time.monotonic()
    result = run(plan, ("n1",), hosts, reporter)
    assert time.monotonic() - began < 10
    assert result.status == "cancelled"
    assert result.explanation == "cancelled; 2 steps did not run"
    assert result.outcomes[("p", "a", "n1")].status == "failed"
    assert reporter.skipped == {
        ("p", "b", "n1"): CANCELLED_REASON,
        ("p", "c", "n1"): CANCELLED_REASON,
        ("q", "d", "n1"): "the p phase failed",
    }
    assert all(session.closed for session in hosts.sessions)


def test_the_deadline_cuts_the_running_command_and_skips_what_did_not_start(
    hosts: Hosts,
) -> None:
    steps = tuple(Step(name, "n1", (Command("sleep 30", timeout=300),)) for name in ("a", "b"))
    reporter = Recorder()
    began = time.monotonic()
    result = run(Plan("demo", (Phase("p", steps),)), ("n1",), hosts, reporter, deadline=began + 1.0)
    assert 0.9 < time.monotonic() - began < 10
    assert result.status == "failed"
    assert result.explanation == "demo failed: the job deadline of 1 s passed; 1 step did not run"
    assert result.outcomes[("p", "a", "n1")] == Outcome("failed", "timed out")
    assert reporter.skipped == {("p", "b", "n1"): "the job deadline passed"}


def test_an_unreachable_node_fails_its_step_and_skips_its_later_steps(hosts: Hosts) -> None:
    hosts.unreachable.add("n2")
    steps = tuple(Step(name, n, (Command("true"),)) for n in NODES for name in ("a", "b"))
    reporter = Recorder()
    result = run(
        Plan("demo", (Phase("p", steps, continue_on_failure=True),)), NODES, hosts, reporter
    )
    refused = "cannot connect to 127.0.1.2:22: connection refused"
    assert result.outcomes[("p", "a", "n2")] == Outcome("failed", refused)
    assert reporter.skipped == {
        ("p", "b", "n2"): f"not run: an earlier step on n2 failed ({refused})"
    }
    assert result.explanation == f"demo failed on n2: {refused}"
    assert {key for key, o in result.outcomes.items() if o.status == "succeeded"} == {
        ("p", name, n) for n in ("n1", "n3") for name in ("a", "b")
    }


def test_a_connection_lost_mid_job_still_closes_every_session(hosts: Hosts) -> None:
    hosts.fail_on["n1"] = "second"
    steps = tuple(
        Step(name, n, (Command(f"echo {name}"),))
        for n in ("n1", "n2")
        for name in ("first", "second")
    )
    reporter = Recorder()
    result = run(Plan("demo", (Phase("p", steps),)), ("n1", "n2"), hosts, reporter)
    assert result.explanation == "demo failed on n1: the connection to n1 was lost"
    assert len(hosts.sessions) == 2 and all(session.closed for session in hosts.sessions)


def test_a_reporter_that_raises_ends_the_run_and_sessions_are_closed(hosts: Hosts) -> None:
    reporter = Recorder()

    def explode(key: Key) -> None:
        if key[1] == "second":
            raise RuntimeError("database is gone")

    reporter.on_start = explode
    steps = tuple(Step(name, "n1", (Command("true"),)) for name in ("first", "second"))
    with pytest.raises(RuntimeError, match="database is gone"):
        run(Plan("demo", (Phase("p", steps),)), ("n1",), hosts, reporter)
    assert hosts.sessions and all(session.closed for session in hosts.sessions)


def test_a_read_that_raises_fails_its_step_with_a_message(hosts: Hosts) -> None:
    def broken(context: StepContext) -> Outcome:
        raise KeyError("hostname")

    plan = Plan("demo", (Phase("p", (Step("s", "n1", (Command("echo hi"),), broken),)),))
    result = run(plan, ("n1",), hosts, Recorder())
    assert result.outcomes[("p", "s", "n1")] == Outcome(
        "failed", "could not read the answer (KeyError: 'hostname')"
    )
    assert (
        result.explanation == "demo failed on n1: could not read the answer (KeyError: 'hostname')"
    )


def test_a_cross_node_failure_reads_without_a_node(hosts: Hosts) -> None:
    def verdict(context: StepContext) -> Outcome:
        return Outcome("failed", "duplicate hostname node-1 on n1 and n2")

    plan = Plan(
        "demo",
        (
            Phase("p", tuple(Step("s", n, (Command("true"),)) for n in ("n1", "n2"))),
            Phase("v", (Step("verdict", None, (), verdict),)),
        ),
    )
    result = run(plan, ("n1", "n2"), hosts, Recorder())
    assert result.explanation == "demo failed: duplicate hostname node-1 on n1 and n2"


def test_success_counts_the_nodes(hosts: Hosts) -> None:
    assert run(one_phase("true", NODES), NODES, hosts, Recorder()).explanation == (
        "demo succeeded on 3 nodes"
    )


def test_a_file_write_is_uploaded_and_logged_without_its_content(hosts: Hosts) -> None:
    content = b"token-secret-value\n"
    write = FileWrite("/etc/kubernetes/secret.conf", content, mode=0o600, secret=True)
    plan = Plan("demo", (Phase("p", (Step("s", "n1", (write, Command("true"))),)),))
    reporter = Recorder()
    assert run(plan, ("n1",), hosts, reporter).status == "succeeded"
    written = hosts.root / "n1" / "etc/kubernetes/secret.conf"
    assert written.read_bytes() == content and written.stat().st_mode & 0o777 == 0o600
    (panel,) = [d for s, d in reporter.handles[("p", "s", "n1")].output_chunks if s == "panel"]
    digest = hashlib.sha256(content).hexdigest()
    assert panel.decode() == (
        f"wrote /etc/kubernetes/secret.conf mode 0600 owner root:root 19 bytes sha256 {digest}\n"
    )
    assert b"token-secret" not in panel


def test_the_facts_plan_runs_end_to_end_through_the_executor(hosts: Hosts) -> None:
    cluster = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
    nodes = [NodeTarget(n, "127.0.1.1", "worker") for n in ("n1", "n2")]
    result = run(facts.plan(cluster, nodes, {}), ("n1", "n2"), hosts, Recorder())
    assert result.status == "succeeded"
    assert result.explanation == "facts succeeded on 2 nodes"
    data = result.outcomes[("facts", "gather facts", "n1")].data
    assert data["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()


def test_the_preflight_plan_ends_in_one_sentence_from_its_verdict(hosts: Hosts) -> None:
    cluster = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
    nodes = [NodeTarget(n, f"192.168.7.{i}", "worker") for i, n in enumerate(("n1", "n2"), 1)]
    result = run(preflight.plan(cluster, nodes, {}), ("n1", "n2"), hosts, Recorder())
    # Both "nodes" are this machine: one hostname and one set of MACs, so the verdict fails.
    assert result.status == "failed"
    assert result.explanation.startswith("preflight failed: ")
    hostname = Path("/proc/sys/kernel/hostname").read_text().strip().lower()
    assert f"duplicate hostname {hostname} on n1 and n2" in result.explanation
    verdict = result.outcomes[("verdict", "verdict", None)]
    assert (
        verdict.status == "failed" and result.explanation == f"preflight failed: {verdict.message}"
    )
    assert {check.node for check in preflight.checks_of(result.outcomes)} == {"n1", "n2", None}


def test_files_in_a_row_are_compared_in_one_command_and_only_changed_ones_written(
    hosts: Hosts, tmp_path: Path
) -> None:
    """The node's copies are at the absolute paths (what the compare reads); LocalSession
    uploads under its own root, so an upload shows there."""
    node_dir = tmp_path / "node-files"
    node_dir.mkdir()
    same, other, later = (node_dir / name for name in ("same.conf", "other.conf", "later.conf"))
    same.write_bytes(b"kept\n")
    same.chmod(0o600)
    other.write_bytes(b"old\n")
    later.write_bytes(b"later\n")
    later.chmod(0o644)
    writes = (
        FileWrite(str(same), b"kept\n", mode=0o600, skip_if_identical=True),
        FileWrite(str(other), b"new\n", mode=0o600, skip_if_identical=True),
        Command("true"),
        FileWrite(str(later), b"later\n", mode=0o644, skip_if_identical=True),
    )
    plan = Plan("demo", (Phase("p", (Step("s", "n1", writes),)),))
    reporter = Recorder()
    assert run(plan, ("n1",), hosts, reporter).status == "succeeded"
    (session,) = hosts.sessions
    compares = [line for line in session.lines if "sha256sum" in line]
    # One command for the two files before the command, one for the file after it.
    assert [line.count("sha256sum") for line in compares] == [2, 1]
    uploaded = hosts.root / "n1" / str(other).lstrip("/")
    assert uploaded.read_bytes() == b"new\n"
    assert not (hosts.root / "n1" / str(same).lstrip("/")).exists()
    assert not (hosts.root / "n1" / str(later).lstrip("/")).exists()
    panel = b"".join(d for s, d in reporter.handles[("p", "s", "n1")].output_chunks if s == "panel")
    assert panel.decode().splitlines()[0].startswith(f"unchanged {same}")
    assert panel.decode().splitlines()[1].startswith(f"wrote {other}")
    assert panel.decode().splitlines()[2].startswith(f"unchanged {later}")
    assert session.batches == [[str(other)]]


def test_files_to_write_in_a_row_go_over_one_command(hosts: Hosts) -> None:
    writes = tuple(FileWrite(f"/etc/kubernetes/f{i}", b"x", mode=0o600) for i in range(3))
    plan = Plan("demo", (Phase("p", (Step("s", "n1", (*writes, Command("true"), writes[0])),)),))
    reporter = Recorder()
    assert run(plan, ("n1",), hosts, reporter).status == "succeeded"
    (session,) = hosts.sessions
    assert session.batches == [
        ["/etc/kubernetes/f0", "/etc/kubernetes/f1", "/etc/kubernetes/f2"],
        ["/etc/kubernetes/f0"],
    ]
    panel = b"".join(d for s, d in reporter.handles[("p", "s", "n1")].output_chunks if s == "panel")
    assert [line.split()[1] for line in panel.decode().splitlines()] == [
        "/etc/kubernetes/f0", "/etc/kubernetes/f1", "/etc/kubernetes/f2", "/etc/kubernetes/f0",
    ]  # fmt: skip


def test_a_streamed_file_is_sent_once_logged_with_progress_and_checked_first(
    hosts: Hosts, tmp_path: Path
) -> None:
    """The node's copy is at the absolute path (what the compare reads); LocalSession uploads
    under its own root, so a second run against the copy it wrote finds it identical."""
    source = tmp_path / "panel" / "release.tar.gz"
    source.parent.mkdir()
    content = os.urandom(3 * ssh.STREAM_CHUNK + 123)
    source.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    target = tmp_path / "node" / "staging" / "release.tar.gz"
    stream = FileStream(str(target), str(source), len(content), digest)
    plan = Plan("demo", (Phase("p", (Step("s", "n1", (stream, Command("true"))),)),))

    reporter = Recorder()
    assert run(plan, ("n1",), hosts, reporter).status == "succeeded"
    (session,) = hosts.sessions
    assert session.streamed == [str(target)]
    assert (hosts.root / "n1" / str(target).lstrip("/")).read_bytes() == content
    panel = b"".join(d for s, d in reporter.handles[("p", "s", "n1")].output_chunks if s == "panel")
    lines = panel.decode().splitlines()
    assert lines[0] == (
        f"sending {target} from {source} on the panel host: {len(content)} bytes sha256 {digest}"
    )
    # Four chunks read: a line after each read that passed a tenth, the last at 100 %.
    assert [line.split("(")[-1] for line in lines[1:-1]] == ["33%)", "66%)", "99%)", "100%)"]
    assert lines[-1].startswith(f"wrote {target} mode 0644 owner root:root {len(content)} bytes")

    # The node holds it (content, mode, owner): nothing is sent again.
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    target.chmod(0o644)
    user = getpass.getuser()
    group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    again = FileStream(str(target), str(source), len(content), digest, owner=user, group=group)
    plan = Plan("demo", (Phase("p", (Step("s", "n1", (again,)),)),))
    reporter = Recorder()
    assert run(plan, ("n1",), hosts, reporter).status == "succeeded"
    assert hosts.sessions[-1].streamed == []
    panel = b"".join(d for s, d in reporter.handles[("p", "s", "n1")].output_chunks if s == "panel")
    assert panel.decode() == (
        f"unchanged {target} mode 0644 owner {user}:{group} {len(content)} bytes sha256 "
        f"{digest}: nothing sent\n"
    )

    # A source that changed size since the plan, or is gone: the step fails, nothing is sent.
    short = FileStream(str(target) + ".2", str(source), len(content) + 1, digest)
    gone = FileStream(str(target) + ".3", str(tmp_path / "missing.tgz"), 1, digest)
    for action, message in (
        (short, f"{source} on the panel host holds {len(content)} bytes, not the "),
        (gone, f"cannot read {tmp_path / 'missing.tgz'} on the panel host: No such file"),
    ):
        plan = Plan("demo", (Phase("p", (Step("s", "n1", (action, Command("true"))),)),))
        result = run(plan, ("n1",), hosts, Recorder())
        assert result.status == "failed" and message in result.explanation
        assert hosts.sessions[-1].streamed == []
        assert hosts.sessions[-1].lines == [action.identical_check()]  # "true" did not run


def test_the_stream_reader_reports_tenths_and_never_gives_more_than_the_size() -> None:
    seen: list[tuple[int, int]] = []
    reader = ssh._Counted(
        io.BytesIO(b"x" * 1000 + b"beyond"), 1000, lambda s, t: seen.append((s, t))
    )
    chunks = [reader.read(250) for _ in range(5)]
    assert [len(c) for c in chunks] == [250, 250, 250, 250, 0]
    assert seen == [(250, 1000), (500, 1000), (750, 1000), (1000, 1000)]
    short: list[tuple[int, int]] = []
    reader = ssh._Counted(io.BytesIO(b"x" * 100), 1000, lambda s, t: short.append((s, t)))
    assert reader.read(4096) == b"x" * 100 and reader.read(4096) == b""
    assert short == [(100, 1000), (100, 1000)]  # a tenth passed, then where it stopped
    assert ssh.upload_timeout(0) == ssh.UPLOAD_FLOOR
    assert ssh.upload_timeout(400 << 20) == ssh.UPLOAD_FLOOR + 400 * ssh.UPLOAD_SECONDS_PER_MIB
