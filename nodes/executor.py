"""Runs a recipe's plan over SSH: phases in order, steps of a phase fanned out over nodes.

No Django here: the job runner hands in a ``Reporter`` (it records steps and output
in the database) and the SSH targets; this module decides what runs when.

How a plan runs:

1. ``reporter.planned(plan)``, then the phases in order. A phase whose predecessor failed is
   skipped, unless that predecessor has ``continue_on_failure``.
2. Inside a phase the node steps are grouped by node; each node's steps run in plan order in one
   thread, at most ``max_parallel`` nodes at once. Then the phase's worker steps (``node`` None)
   run here, in order, with every outcome so far in ``earlier``.
3. Each host gets one SSH session, opened at its first step and kept for the whole execution;
   every session is closed at the end, whatever happened. An ``ssh.SSHError`` fails its step
   and skips the node's later steps; the other nodes go on.
4. A step that succeeded in the attempt being retried (``reporter.previous``) is skipped and its
   outcome reused. Once the cancel event is set or the deadline passed, no step starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from nodes import ssh
from nodes.recipes.plan import (
    Action,
    Command,
    CommandOutput,
    FileStream,
    FileWrite,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

ExecutionStatus = Literal["succeeded", "failed", "cancelled"]
StepKey = tuple[str, str, "str | None"]

PREVIOUS_REASON = "succeeded in the earlier attempt"
CANCELLED_REASON = "cancelled"
DEADLINE_REASON = "the job deadline passed"


class StepHandle(Protocol):
    """One running step, as the reporter records it."""

    def output(self, stream: str, data: bytes) -> None:
        """Output as it arrives (``stream`` is "stdout", "stderr" or "panel")."""

    def finish(self, outcome: Outcome, exit_code: int | None) -> None:
        """The step ended; ``exit_code`` of its last command, None when none ran."""


class Reporter(Protocol):
    """What the executor tells the job (implemented by ``clusterpanel.jobs``).

    Thread safety: the executor calls the reporter and the step handles from several threads at
    once (one per node being worked on, plus the calling thread), so an implementation must
    serialise its own state (the jobs reporter holds a lock). Calls for one step are ordered:
    ``start_step``, then its ``output`` calls, then ``finish``.
    """

    cancel_event: threading.Event

    def planned(self, plan: Plan) -> None:
        """Every step of the plan, before the first runs (pending rows, progress)."""

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        """The outcome of this step if it succeeded in the attempt this one retries."""

    def start_step(self, phase: str, step: str, node: str | None) -> StepHandle:
        """The step starts now."""

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        """The step will not run (cancelled, or an earlier phase failed)."""


@dataclass(frozen=True)
class Execution:
    """How a plan ended, with one sentence for the operator.

    ``learned_host_keys``: per node, the key trust on first use accepted during this execution
    (the caller pins it).
    """

    status: ExecutionStatus
    explanation: str
    outcomes: Mapping[tuple[str, str, str | None], Outcome]
    learned_host_keys: Mapping[str, ssh.HostKey] = field(default_factory=dict)


Connect = Callable[[ssh.Target], ssh.Session]


def execute(
    plan: Plan,
    targets: Mapping[str, ssh.Target],
    reporter: Reporter,
    *,
    max_parallel: int = 20,
    deadline: float | None = None,
    connect: Connect = ssh.Session.open,
    upload_seconds_per_mib: float = ssh.UPLOAD_SECONDS_PER_MIB,
) -> Execution:
    """Run ``plan``; ``targets`` maps node names to where and how to reach them.

    ``deadline`` is a ``time.monotonic()`` value: no step starts after it, and commands running
    then are cut by their timeout. A ``FileStream`` may take ``ssh.upload_timeout`` of its size
    (``upload_seconds_per_mib`` per MiB), within the deadline.
    """
    run = _Run(plan, targets, reporter, max(1, max_parallel), deadline, connect)
    run.upload_seconds_per_mib = upload_seconds_per_mib
    return run.run()


class _Run:
    """The state of one execution, shared by the node threads under ``_lock``."""

    def __init__(
        self,
        plan: Plan,
        targets: Mapping[str, ssh.Target],
        reporter: Reporter,
        max_parallel: int,
        deadline: float | None,
        connect: Connect,
    ) -> None:
        self.plan, self.targets, self.reporter = plan, targets, reporter
        self.max_parallel, self.deadline, self.connect = max_parallel, deadline, connect
        self.budget = None if deadline is None else deadline - time.monotonic()
        self._lock = threading.Lock()
        self.outcomes: dict[StepKey, Outcome] = {}
        self.sessions: dict[str, ssh.Session] = {}
        self.learned: dict[str, ssh.HostKey] = {}
        self.unreachable: dict[str, str] = {}  # node -> the SSH error that stopped it
        self.not_run = 0  # steps skipped by cancel or deadline
        self.cancelled = False
        self.deadline_hit = False
        self.upload_seconds_per_mib = ssh.UPLOAD_SECONDS_PER_MIB

    # 1. The phases.
    def run(self) -> Execution:
        self.reporter.planned(self.plan)
        try:
            blocked_by: str | None = None
            with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="plan") as pool:
                for phase in self.plan.phases:
                    if blocked_by is not None:
                        for step in phase.steps:
                            reason = f"the {blocked_by} phase failed"
                            self.reporter.skip_step(phase.name, step.name, step.node, reason)
                        continue
                    self._run_phase(phase, pool)
                    if not phase.continue_on_failure and self._phase_failed(phase):
                        blocked_by = phase.name
        finally:
            self._close_sessions()
        return self._result()

    # 2. One phase: node steps fanned out, then worker steps.
    def _run_phase(self, phase: Phase, pool: ThreadPoolExecutor) -> None:
        by_node: dict[str, list[Step]] = {}
        for step in phase.steps:
            if step.node is not None:
                by_node.setdefault(step.node, []).append(step)
        with self._lock:
            before = dict(self.outcomes)
        futures = [
            pool.submit(self._run_node_steps, phase, node, steps, before)
            for node, steps in by_node.items()
        ]
        for future in futures:
            future.result()  # a reporter that raises ends the job (errored), after the others
        for step in phase.steps:
            if step.node is None:
                with self._lock:
                    earlier = dict(self.outcomes)
                self._run_step(phase, step, earlier)

    def _run_node_steps(
        self, phase: Phase, node: str, steps: Sequence[Step], before: Mapping[StepKey, Outcome]
    ) -> None:
        # A node's step sees the earlier phases and its own earlier steps of this phase, never
        # the other nodes' steps of this phase: what it reads does not depend on thread timing.
        earlier = dict(before)
        for step in steps:
            outcome = self._run_step(phase, step, earlier)
            if outcome is not None:
                earlier[(phase.name, step.name, node)] = outcome

    def _phase_failed(self, phase: Phase) -> bool:
        with self._lock:
            return any(
                (outcome := self.outcomes.get((phase.name, step.name, step.node))) is None
                or outcome.status == "failed"
                for step in phase.steps
            )

    # 3. One step.
    def _run_step(
        self, phase: Phase, step: Step, earlier: Mapping[StepKey, Outcome]
    ) -> Outcome | None:
        key: StepKey = (phase.name, step.name, step.node)
        reporter = self.reporter
        previous = reporter.previous(*key)
        if previous is not None and previous.status == "succeeded":
            reporter.skip_step(*key, PREVIOUS_REASON)
            self._record(key, previous)
            return previous
        if step.node is not None and step.node in self.unreachable:
            why = self.unreachable[step.node]
            reason = f"not run: an earlier step on {step.node} failed ({why})"
            reporter.skip_step(*key, reason)
            return None
        if reporter.cancel_event.is_set():
            reporter.skip_step(*key, CANCELLED_REASON)
            with self._lock:
                self.cancelled, self.not_run = True, self.not_run + 1
            return None
        if self._remaining() == 0.0:
            reporter.skip_step(*key, DEADLINE_REASON)
            with self._lock:
                self.deadline_hit, self.not_run = True, self.not_run + 1
            return None
        handle = reporter.start_step(*key)
        outcome, exit_code = self._perform(step, handle, earlier)
        handle.finish(outcome, exit_code)
        self._record(key, outcome)
        return outcome

    def _perform(
        self, step: Step, handle: StepHandle, earlier: Mapping[StepKey, Outcome]
    ) -> tuple[Outcome, int | None]:
        outputs: list[CommandOutput] = []
        exit_code: int | None = None
        if step.actions and step.node is None:
            return Outcome("failed", "a step on the worker cannot run commands (plan error)"), None
        if step.actions:
            assert step.node is not None
            try:
                session = self._session(step.node)
                unchanged: set[int] = set()  # indexes of files found identical on the node
                compared_upto = -1  # the files up to this index were compared already
                written: set[int] = set()  # indexes of files written with an earlier one
                for index, action in enumerate(step.actions):
                    if index in written:
                        continue
                    if self.reporter.cancel_event.is_set():
                        self._mark_cancelled()
                        return Outcome("failed", "cancelled"), exit_code
                    remaining = self._remaining()
                    if remaining == 0.0:
                        self._mark_deadline()
                        return Outcome("failed", DEADLINE_REASON), exit_code
                    if isinstance(action, Command):
                        output, cancelled = self._command(session, action, handle, remaining)
                        exit_code = output.exit_code
                        if cancelled:
                            self._mark_cancelled()
                            return Outcome("failed", "cancelled while running"), exit_code
                        outputs.append(output)
                        if output.timed_out and self._remaining() == 0.0:
                            self._mark_deadline()
                        if output.timed_out or output.exit_code not in action.ok_exit_codes:
                            break  # like ``set -e``: the step's read judges what ran
                    elif isinstance(action, FileStream):
                        stopped = self._stream(session, action, handle, remaining)
                        if stopped is not None:
                            return stopped, exit_code
                    else:
                        timeout = 60.0 if remaining is None else min(60.0, remaining)
                        if action.skip_if_identical and index > compared_upto:
                            batch = _files_to_compare(step.actions, index)
                            unchanged |= self._identical(session, batch, timeout)
                            compared_upto = batch[-1][0]
                        if index in unchanged:
                            handle.output("panel", _unchanged(action))
                            continue
                        batch = _files_to_write(step.actions, index, unchanged, compared_upto)
                        self._write(session, batch, handle, timeout)
                        written.update(i for i, _ in batch)
            except ssh.SSHError as error:
                self._mark_unreachable(step.node, str(error))
                return Outcome("failed", str(error)), exit_code
            except Exception as error:  # an SSH-layer bug fails the step, not the job
                message = f"unexpected error talking to {step.node}: {type(error).__name__}"
                self._mark_unreachable(step.node, message)
                return Outcome("failed", message), exit_code
        try:
            outcome = step.read(StepContext(step.node, tuple(outputs), earlier))
        except Exception as error:  # a parser bug fails its step, not the job
            detail = f": {error}" if str(error) else ""
            message = f"could not read the answer ({type(error).__name__}{detail})"
            return Outcome("failed", message), exit_code
        if not isinstance(outcome, Outcome):
            return Outcome("failed", "could not read the answer (no outcome)"), exit_code
        return outcome, exit_code

    def _command(
        self, session: ssh.Session, command: Command, handle: StepHandle, remaining: float | None
    ) -> tuple[CommandOutput, bool]:
        timeout = command.timeout if remaining is None else min(command.timeout, remaining)
        result = session.run(
            command.line,
            timeout=timeout,
            stdin=command.stdin,
            on_output=handle.output,
            cancel=self.reporter.cancel_event,
        )
        output = CommandOutput(
            exit_code=result.exit_code,
            stdout=result.stdout.decode("utf-8", "replace"),
            stderr=result.stderr.decode("utf-8", "replace"),
            started_at=result.started_at,
            finished_at=result.finished_at,
            timed_out=result.timed_out,
        )
        return output, result.cancelled

    @staticmethod
    def _identical(
        session: ssh.Session, files: Sequence[tuple[int, FileWrite]], timeout: float
    ) -> set[int]:
        """The indexes of ``files`` the node already holds exactly (content, mode, owner), from
        one command for all of them: a bundle of 25 files costs one round trip, not 25. A
        comparison that fails says "not identical": the file is written."""
        tests = [f"if {file.identical_check()}; then echo {index}; fi" for index, file in files]
        result = session.run("\n".join([*tests, "exit 0"]), timeout=timeout)
        if result.exit_code != 0:
            return set()
        found = {int(word) for word in result.stdout.split() if word.isdigit()}
        return found & {index for index, _ in files}

    @staticmethod
    def _write(
        session: ssh.Session,
        files: Sequence[tuple[int, FileWrite]],
        handle: StepHandle,
        timeout: float,
    ) -> None:
        """Write ``files`` over one command, each logged (never its content) once written."""

        def logged(position: int) -> None:
            handle.output("panel", _written(files[position][1]))

        uploads = [
            ssh.Upload(f.path, f.content, mode=f.mode, owner=f.owner, group=f.group)
            for _, f in files
        ]
        session.upload_files(uploads, timeout=timeout, on_written=logged)

    def _stream(
        self, session: ssh.Session, file: FileStream, handle: StepHandle, remaining: float | None
    ) -> Outcome | None:
        """Stream one file from the panel host: nothing sent when the node already holds it
        (a retry after a lost connection does not send a tarball again). Returns the step's
        outcome when it must stop here, None when the step goes on."""
        if file.skip_if_identical:
            # Hashing the node's copy takes time with the size (20 MiB/s at worst).
            limit = 60.0 + file.size / (20 << 20)
            timeout = limit if remaining is None else min(limit, remaining)
            result = session.run(file.identical_check(), timeout=timeout)
            if result.exit_code == 0:
                handle.output("panel", _unchanged_stream(file))
                return None
        try:
            source = open(file.source, "rb")  # noqa: SIM115 (closed below, after the upload)
        except OSError as error:
            why = error.strerror or type(error).__name__
            return Outcome("failed", f"cannot read {file.source} on the panel host: {why}")
        with source:
            size = os.fstat(source.fileno()).st_size
            if size != file.size:
                return Outcome(
                    "failed",
                    f"{file.source} on the panel host holds {size} bytes, not the {file.size} "
                    "the plan was made with: plan the job again",
                )
            handle.output("panel", _sending(file))

            def progress(sent: int, total: int) -> None:
                share = 100 * sent // total if total else 100
                handle.output("panel", f"sent {sent} of {total} bytes ({share}%)\n".encode())

            limit = ssh.upload_timeout(file.size, per_mib=self.upload_seconds_per_mib)
            timeout = limit if remaining is None else min(limit, remaining)
            try:
                result = session.upload_stream(
                    file.path, source, file.size, sha256=file.sha256, mode=file.mode,
                    owner=file.owner, group=file.group, timeout=timeout, on_progress=progress,
                    cancel=self.reporter.cancel_event,
                )  # fmt: skip
            except ssh.SSHError:
                if self._remaining() == 0.0:
                    self._mark_deadline()
                raise
        if result.cancelled:
            self._mark_cancelled()
            return Outcome("failed", "cancelled while running")
        handle.output("panel", _streamed(file))
        return None

    def _session(self, node: str) -> ssh.Session:
        # Only the thread working on ``node`` opens or uses its session (phases run one after
        # another), so the lock guards the dictionary, not the connection.
        with self._lock:
            session = self.sessions.get(node)
        if session is not None:
            return session
        target = self.targets.get(node)
        if target is None:
            raise ssh.SSHError(f"no SSH target for the node {node}")
        session = self.connect(target)
        with self._lock:
            self.sessions[node] = session
            learned = getattr(session, "learned_host_key", None)
            if learned is not None:
                self.learned[node] = learned
        return session

    def _close_sessions(self) -> None:
        with self._lock:
            sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(Exception):  # a dead connection is closed anyway
                session.close()

    # Shared bookkeeping.
    def _record(self, key: StepKey, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[key] = outcome

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def _mark_cancelled(self) -> None:
        with self._lock:
            self.cancelled = True

    def _mark_deadline(self) -> None:
        with self._lock:
            self.deadline_hit = True

    def _mark_unreachable(self, node: str, reason: str) -> None:
        with self._lock:
            self.unreachable.setdefault(node, reason)

    # 4. The sentence.
    def _result(self) -> Execution:
        kind = self.plan.kind
        outcomes = dict(self.outcomes)
        keys = [(p.name, s.name, s.node) for p in self.plan.phases for s in p.steps]
        failed = [key for key in keys if key in outcomes and outcomes[key].status == "failed"]
        learned = dict(self.learned)
        if self.cancelled:
            explanation = "cancelled"
            if self.not_run:
                explanation += f"; {_steps(self.not_run)} did not run"
            return Execution("cancelled", explanation, outcomes, learned)
        if self.deadline_hit:
            explanation = f"{kind} failed: the job deadline of {_duration(self.budget)} passed"
            if self.not_run:
                explanation += f"; {_steps(self.not_run)} did not run"
            return Execution("failed", explanation, outcomes, learned)
        if failed:
            first = failed[0]
            message = outcomes[first].message or "the step failed"
            where = f" on {first[2]}" if first[2] is not None else ""
            explanation = f"{kind} failed{where}: {message}"
            if len(failed) > 1:
                more = len(failed) - 1
                explanation += f"; {more} more {'step' if more == 1 else 'steps'} failed"
            return Execution("failed", explanation, outcomes, learned)
        return Execution("succeeded", self._success(outcomes), outcomes, learned)

    def _success(self, outcomes: Mapping[StepKey, Outcome]) -> str:
        # A plan that ends with one worker step (a verdict) summarises itself best.
        if self.plan.phases:
            last = self.plan.phases[-1].steps
            if len(last) == 1 and last[0].node is None:
                outcome = outcomes.get((self.plan.phases[-1].name, last[0].name, None))
                if outcome is not None and outcome.message:
                    return outcome.message
        nodes = {step.node for phase in self.plan.phases for step in phase.steps if step.node}
        count = len(nodes)
        return f"{self.plan.kind} succeeded on {count} {'node' if count == 1 else 'nodes'}"


def _files_to_compare(actions: Sequence[Action], start: int) -> list[tuple[int, FileWrite]]:
    """The files to compare together from ``start`` on: the writes that follow one another with
    no command between them (a command may change a file) and no path twice (the second write
    must be compared with what the first one wrote)."""
    batch: list[tuple[int, FileWrite]] = []
    paths: set[str] = set()
    for index in range(start, len(actions)):
        action = actions[index]
        if not isinstance(action, FileWrite) or action.path in paths:
            break
        paths.add(action.path)
        if action.skip_if_identical:
            batch.append((index, action))
    return batch


# Files written together: at most this many bytes in one command (the contents travel as
# base64 in the command's stdin; a larger file goes alone).
WRITE_BATCH_BYTES = 4 * 1024 * 1024


def _files_to_write(
    actions: Sequence[Action], start: int, unchanged: set[int], compared_upto: int
) -> list[tuple[int, FileWrite]]:
    """The files to write together from ``start`` on: the writes that follow one another with no
    command between them, leaving out those found unchanged, up to ``WRITE_BATCH_BYTES`` (but
    always ``start`` itself) and stopping before a path written twice or a file not compared yet
    (it must be compared first)."""
    batch: list[tuple[int, FileWrite]] = []
    paths: set[str] = set()
    size = 0
    for index in range(start, len(actions)):
        action = actions[index]
        if not isinstance(action, FileWrite) or action.path in paths:
            break
        if index in unchanged:
            continue
        not_compared = action.skip_if_identical and index > compared_upto
        if batch and (not_compared or size + len(action.content) > WRITE_BATCH_BYTES):
            break
        paths.add(action.path)
        size += len(action.content)
        batch.append((index, action))
    return batch


def _written(action: FileWrite) -> bytes:
    """What the job log says about a file written: never its content."""
    digest = hashlib.sha256(action.content).hexdigest()
    return (
        f"wrote {action.path} mode {action.mode:04o} owner {action.owner}:{action.group} "
        f"{len(action.content)} bytes sha256 {digest}\n"
    ).encode()


def _unchanged(action: FileWrite) -> bytes:
    return (
        f"unchanged {action.path} mode {action.mode:04o} owner {action.owner}:{action.group} "
        f"{len(action.content)} bytes sha256 {action.sha256}\n"
    ).encode()


def _sending(file: FileStream) -> bytes:
    return (
        f"sending {file.path} from {file.source} on the panel host: {file.size} bytes "
        f"sha256 {file.sha256}\n"
    ).encode()


def _streamed(file: FileStream) -> bytes:
    return (
        f"wrote {file.path} mode {file.mode:04o} owner {file.owner}:{file.group} "
        f"{file.size} bytes sha256 {file.sha256} (checked on the node)\n"
    ).encode()


def _unchanged_stream(file: FileStream) -> bytes:
    return (
        f"unchanged {file.path} mode {file.mode:04o} owner {file.owner}:{file.group} "
        f"{file.size} bytes sha256 {file.sha256}: nothing sent\n"
    ).encode()


def _steps(count: int) -> str:
    return f"{count} {'step' if count == 1 else 'steps'}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "the job"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
