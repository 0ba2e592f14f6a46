"""The reporter a job kind hands to the executor: steps and output into the database.

It implements ``nodes.executor.Reporter`` by duck typing (the platform imports no app). The
executor calls it from several threads at once; none of them touches the database. Every
write goes through one writer thread with its own connection, in the order the calls came:
on SQLite that is one writer instead of a dozen fighting for the lock, on PostgreSQL one
connection per job instead of one per node thread, and chunks are committed in ``seq`` order.
The same thread heartbeats, polls for a cancel request and watches the deadline.

Output of a step is capped: the first ``HEAD`` bytes are written as they arrive, then the
output goes on live until the step's output passes ``HEAD + TAIL``; from then on only the last
``TAIL`` bytes are kept in memory and, at the step's end, the live part past the head is
replaced by a marker "… N bytes omitted …" and the kept tail. Byte counts stay exact.
"""

from __future__ import annotations

import codecs
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from clusterpanel.jobs.models import (
    Job,
    JobLogChunk,
    JobStatus,
    JobStep,
    LogStream,
    StepStatus,
)

logger = logging.getLogger(__name__)

StepKey = tuple[str, str, str | None]

# Chunks are written at least this often while output flows, or when this much is waiting.
FLUSH_EVERY = 0.3
BATCH_BYTES = 16 * 1024
CANCEL_CHECK_EVERY = 1.0  # seconds between reads of a cancel request
# One chunk row holds at most this much text.
CHUNK_BYTES = 16 * 1024


@dataclass(frozen=True)
class StoredCheck:
    """A check as stored in a step's result (duck-types ``nodes.recipes.plan.Check``)."""

    node: str | None
    name: str
    status: str
    message: str
    ignored: bool = False


@dataclass(frozen=True)
class StoredOutcome:
    """A step's outcome read back from the database (duck-types ``plan.Outcome``)."""

    status: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[StoredCheck, ...] = ()


def outcome_result(outcome: Any) -> dict[str, Any]:
    """What a step's ``result`` keeps of an outcome: its data and checks, as JSON."""
    data = json.loads(json.dumps(dict(getattr(outcome, "data", {}) or {}), default=str))
    checks = [
        {
            "node": getattr(check, "node", None),
            "name": str(getattr(check, "name", "")),
            "status": str(getattr(check, "status", "")),
            "message": str(getattr(check, "message", "")),
            "ignored": bool(getattr(check, "ignored", False)),
        }
        for check in getattr(outcome, "checks", ()) or ()
    ]
    return {"data": data, "checks": checks}


def stored_outcome(step: JobStep) -> StoredOutcome:
    result = step.result or {}
    checks = tuple(
        StoredCheck(
            c.get("node"),
            c.get("name", ""),
            c.get("status", ""),
            c.get("message", ""),
            bool(c.get("ignored", False)),
        )
        for c in result.get("checks", [])
    )
    return StoredOutcome(step.status, step.message, result.get("data", {}), checks)


def previous_outcomes(job: Job) -> dict[StepKey, StoredOutcome]:
    """Outcomes of steps that succeeded in the attempts this job retries.

    Walk the chain from the nearest attempt back: a step's newest attempt that ran it decides
    (a step that failed last time runs again even if an older attempt had it succeed); steps
    an attempt skipped or never reached leave the decision to the attempt before."""
    found: dict[StepKey, StoredOutcome] = {}
    decided: set[StepKey] = set()
    ancestor_id = job.retry_of_id
    seen: set[int] = set()
    while ancestor_id is not None and ancestor_id not in seen:
        seen.add(ancestor_id)
        for step in JobStep.objects.filter(job_id=ancestor_id):
            key: StepKey = (step.phase, step.name, step.node_name or None)
            if key in decided or step.status not in (StepStatus.SUCCEEDED, StepStatus.FAILED):
                continue
            decided.add(key)
            if step.status == StepStatus.SUCCEEDED:
                found[key] = stored_outcome(step)
        ancestor_id = (
            Job.objects.filter(pk=ancestor_id).values_list("retry_of_id", flat=True).first()
        )
    return found


def _label(key: StepKey) -> str:
    phase, step, node = key
    return f"{phase}/{step}" + (f" on {node}" if node else "")


@dataclass
class _Pending:
    """A chunk not yet written; consecutive output of one step and stream is coalesced."""

    seq: int
    step_id: int | None
    node_name: str
    stream: str
    text: str
    tail: bool = False  # written past the head: may be deleted when the step overflows
    taken: bool = False  # handed to the writer: no more text may be added


@dataclass
class _StepLog:
    """The output bookkeeping of one step."""

    step_id: int
    node_name: str
    counts: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    head_used: int = 0
    tail: deque[list[Any]] = field(default_factory=deque)  # [stream, bytearray]
    tail_size: int = 0
    dropped: int = 0
    overflowed: bool = False
    live_tail: list[_Pending] = field(default_factory=list)
    decoders: dict[str, Any] = field(default_factory=dict)

    def decode(self, stream: str, data: bytes, final: bool = False) -> str:
        decoder = self.decoders.get(stream)
        if decoder is None:
            decoder = self.decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        return str(decoder.decode(data, final))


class _Handle:
    """One running step (``nodes.executor.StepHandle``)."""

    def __init__(self, reporter: JobReporter, key: StepKey) -> None:
        self._reporter = reporter
        self._key = key

    def output(self, stream: str, data: bytes) -> None:
        self._reporter._output(self._key, stream, data)

    def finish(self, outcome: Any, exit_code: int | None) -> None:
        self._reporter._finish_step(self._key, outcome, exit_code)


_STOP = object()


class JobReporter:
    """Records one job's steps and output; see the module docstring."""

    def __init__(self, job: Job, *, heartbeat_interval: float | None = None) -> None:
        self.job = job
        self.cancel_event = threading.Event()
        self.cancelled_by = ""
        self.deadline_hit = False
        self.lost = False
        self.deadline_seconds = job.deadline_seconds
        self.deadline_at = time.monotonic() + job.deadline_seconds
        self.step_at_cancel = ""
        self.head_bytes = int(settings.CLUSTERPANEL_JOB_LOG_HEAD_BYTES)
        self.tail_bytes = int(settings.CLUSTERPANEL_JOB_LOG_TAIL_BYTES)
        self.heartbeat_interval = float(
            heartbeat_interval or settings.CLUSTERPANEL_JOB_HEARTBEAT_INTERVAL
        )
        self._lock = threading.RLock()
        self._ops: queue.Queue[Any] = queue.Queue()
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._seq = 0
        self._steps: dict[StepKey, JobStep] = {}
        self._logs: dict[StepKey, _StepLog] = {}
        self._running: dict[StepKey, None] = {}
        self._reused: set[StepKey] = set()
        self._errors: list[BaseException] = []
        self._thread: threading.Thread | None = None
        # Read once, on the caller's connection, before any thread starts.
        self._seq = max(job.chunks.order_by("-seq").values_list("seq", flat=True)[:1] or [0])
        self._previous = previous_outcomes(job)
        self._node_ids = self._node_ids_by_name(job)
        for step in job.steps.all():
            self._steps[(step.phase, step.name, step.node_name or None)] = step

    @staticmethod
    def _node_ids_by_name(job: Job) -> dict[str, int]:
        if job.cluster_id is None:
            return {}
        node_model = apps.get_model("nodes", "Node")
        return dict(node_model.objects.filter(cluster_id=job.cluster_id).values_list("name", "pk"))

    # --- lifetime -----------------------------------------------------------------------------

    def begin(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"job-{self.job.pk}-writer", daemon=True
        )
        self._thread.start()

    def seconds_left(self) -> float:
        return max(0.0, self.deadline_at - time.monotonic())

    def close(self, *, cancelled: bool) -> dict[str, int]:
        """Write everything, settle the steps that never ended, stop the writer thread.

        Steps still pending did not run (``cancelled`` when the job was cancelled, else
        ``skipped``); steps still running are ``failed``. Returns step counts by status."""
        self._submit(lambda: self._settle_steps(cancelled))
        self._ops.put(_STOP)
        if self._thread is not None:
            self._thread.join()
        if self._errors:
            raise RuntimeError("the job's log could not be written") from self._errors[0]
        counts: dict[str, int] = {}
        for status in JobStep.objects.filter(job=self.job).values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return counts

    def note(self, text: str, key: StepKey | None = None) -> None:
        """A line from the panel itself (cancel requests, internal errors) in the job's log."""
        with self._lock:
            step = self._steps.get(key) if key else None
            node = (key[2] or "") if key else ""
            self._new_chunk(step.pk if step else None, node, LogStream.PANEL,
                            text.rstrip("\n") + "\n")  # fmt: skip

    # --- the Reporter protocol ----------------------------------------------------------------

    def planned(self, plan: Any) -> None:
        with self._lock:
            position = max((s.position for s in self._steps.values()), default=0)
            new: list[JobStep] = []
            for phase in plan.phases:
                for step in phase.steps:
                    key: StepKey = (phase.name, step.name, step.node)
                    if key in self._steps:
                        continue
                    position += 1
                    row = JobStep(
                        job_id=self.job.pk,
                        position=position,
                        phase=phase.name,
                        name=step.name,
                        node_id=self._node_ids.get(step.node) if step.node else None,
                        node_name=step.node or "",
                    )
                    self._steps[key] = row
                    new.append(row)
        if new:
            # Rows get their primary keys in the writer; later ops read them from these objects.
            self._submit(lambda: JobStep.objects.bulk_create(new))
            self._sync()

    def previous(self, phase: str, step: str, node: str | None) -> Any:
        outcome = self._previous.get((phase, step, node))
        if outcome is not None:
            with self._lock:
                self._reused.add((phase, step, node))
        return outcome

    def start_step(self, phase: str, step: str, node: str | None) -> _Handle:
        key: StepKey = (phase, step, node)
        row = self._row(key)
        now = timezone.now()
        with self._lock:
            self._running[key] = None
            self._logs[key] = _StepLog(step_id=row.pk, node_name=node or "")
        self._submit(
            lambda: JobStep.objects.filter(pk=row.pk).update(
                status=StepStatus.RUNNING, started_at=now
            )
        )
        return _Handle(self, key)

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        key: StepKey = (phase, step, node)
        row = self._row(key)
        fields: dict[str, Any] = {"message": reason, "finished_at": timezone.now()}
        with self._lock:
            reused = self._previous.get(key) if key in self._reused else None
        if reused is not None:
            fields.update(status=StepStatus.SKIPPED, result=outcome_result(reused))
        elif self.cancel_event.is_set():
            fields["status"] = StepStatus.CANCELLED
        else:
            fields["status"] = StepStatus.SKIPPED
        self._submit(lambda: JobStep.objects.filter(pk=row.pk).update(**fields))

    # --- steps and output ---------------------------------------------------------------------

    def _row(self, key: StepKey) -> JobStep:
        """The step's row; a step the plan did not announce gets one at the end."""
        with self._lock:
            row = self._steps.get(key)
            if row is not None:
                return row
            position = max((s.position for s in self._steps.values()), default=0) + 1
            phase, name, node = key
            row = JobStep(job_id=self.job.pk, position=position, phase=phase, name=name,
                          node_id=self._node_ids.get(node) if node else None,
                          node_name=node or "")  # fmt: skip
            self._steps[key] = row
        self._submit(row.save)
        self._sync()
        return row

    def _output(self, key: StepKey, stream: str, data: bytes) -> None:
        if not data:
            return
        if stream not in ("stdout", "stderr"):
            stream = LogStream.PANEL
        with self._lock:
            log = self._logs[key]
            if stream in log.counts:
                log.counts[stream] += len(data)
            room = self.head_bytes - log.head_used
            if room > 0:
                head, data = data[:room], data[room:]
                log.head_used += len(head)
                self._new_chunk(log.step_id, log.node_name, stream, log.decode(stream, head))
            if not data:
                return
            log.tail.append([stream, bytearray(data)])
            log.tail_size += len(data)
            while log.tail_size > self.tail_bytes:
                first = log.tail[0]
                cut = min(len(first[1]), log.tail_size - self.tail_bytes)
                del first[1][:cut]
                log.tail_size -= cut
                log.dropped += cut
                if not first[1]:
                    log.tail.popleft()
            if log.overflowed:
                return
            if log.dropped == 0:
                log.live_tail.append(
                    self._new_chunk(
                        log.step_id, log.node_name, stream, log.decode(stream, data), tail=True
                    )
                )
                return
            # Past head + tail for the first time: the live part past the head goes; the
            # marker and the kept tail are written when the step ends.
            log.overflowed = True
            written = [c.seq for c in log.live_tail if c.taken]
            self._pending = [c for c in self._pending if not (c.tail and c.step_id == log.step_id)]
            self._pending_bytes = sum(len(c.text) for c in self._pending)
            log.live_tail = []
        if written:
            self._submit(
                lambda: JobLogChunk.objects.filter(job_id=self.job.pk, seq__in=written).delete()
            )

    def _finish_step(self, key: StepKey, outcome: Any, exit_code: int | None) -> None:
        row = self._row(key)
        with self._lock:
            self._running.pop(key, None)
            log = self._logs.get(key) or _StepLog(step_id=row.pk, node_name=key[2] or "")
            if log.overflowed:
                self._new_chunk(log.step_id, log.node_name, LogStream.PANEL,
                                f"… {log.dropped} bytes omitted …\n")  # fmt: skip
                fresh = _StepLog(step_id=log.step_id, node_name=log.node_name)
                for stream, data in log.tail:
                    self._new_chunk(log.step_id, log.node_name, stream,
                                    fresh.decode(stream, bytes(data)))  # fmt: skip
            status = getattr(outcome, "status", "failed")
            fields: dict[str, Any] = {
                "status": status if status == StepStatus.SUCCEEDED else StepStatus.FAILED,
                "exit_code": exit_code,
                "finished_at": timezone.now(),
                "message": str(getattr(outcome, "message", "") or ""),
                "result": outcome_result(outcome),
                "stdout_bytes": log.counts["stdout"],
                "stderr_bytes": log.counts["stderr"],
                "dropped_bytes": log.dropped,
            }
        self._submit(lambda: JobStep.objects.filter(pk=row.pk).update(**fields))
        self._submit(self._flush)

    def _new_chunk(self, step_id: int | None, node_name: str, stream: str, text: str,
                   tail: bool = False) -> _Pending:  # fmt: skip
        """Queue text for the log (caller holds the lock); joins the previous chunk if it is
        the same step, stream and part, not yet written, and small."""
        last = self._pending[-1] if self._pending else None
        if (
            last is not None
            and not last.taken
            and last.step_id == step_id
            and last.stream == stream
            and last.tail == tail
            and stream != LogStream.PANEL
            and len(last.text) + len(text) <= CHUNK_BYTES
        ):
            last.text += text
        else:
            self._seq += 1
            last = _Pending(self._seq, step_id, node_name, stream, text, tail)
            self._pending.append(last)
        self._pending_bytes += len(text)
        return last

    # --- the writer thread --------------------------------------------------------------------

    def _submit(self, op: Callable[[], Any]) -> None:
        if self._thread is None:
            op()  # not started (tests, previews): write on the caller's connection
        else:
            self._ops.put(op)

    def _sync(self) -> None:
        """Wait until the writer has done everything submitted so far."""
        if self._thread is None:
            return
        done = threading.Event()
        self._ops.put(done.set)
        done.wait()

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            for chunk in batch:
                chunk.taken = True
        batch = [c for c in batch if c.text]
        if batch:
            JobLogChunk.objects.bulk_create(
                JobLogChunk(job_id=self.job.pk, step_id=c.step_id, seq=c.seq,
                            node_name=c.node_name, stream=c.stream, text=c.text)
                for c in batch
            )  # fmt: skip

    def _settle_steps(self, cancelled: bool) -> None:
        self._flush()
        now = timezone.now()
        steps = JobStep.objects.filter(job_id=self.job.pk)
        steps.filter(status=StepStatus.RUNNING).update(
            status=StepStatus.FAILED, finished_at=now, message="the job ended while this step ran"
        )
        steps.filter(status=StepStatus.PENDING).update(
            status=StepStatus.CANCELLED if cancelled else StepStatus.SKIPPED,
            finished_at=now,
            message="did not run",
        )

    def _loop(self) -> None:
        last_beat = time.monotonic()
        last_flush = time.monotonic()
        last_cancel_check = time.monotonic()
        try:
            while True:
                try:
                    op = self._ops.get(timeout=FLUSH_EVERY)
                except queue.Empty:
                    op = None
                if op is _STOP:
                    self._flush()
                    return
                try:
                    if op is not None:
                        op()
                    now = time.monotonic()
                    if self._pending_bytes >= BATCH_BYTES or now - last_flush >= FLUSH_EVERY:
                        self._flush()
                        last_flush = now
                    if now - last_beat >= self.heartbeat_interval:
                        self._beat()
                        last_beat = last_cancel_check = now
                    elif now - last_cancel_check >= CANCEL_CHECK_EVERY:
                        # A cancel must stop the remote command within seconds, whatever
                        # the heartbeat interval: one indexed read per second is cheap.
                        self._check_cancel()
                        last_cancel_check = now
                    if not self.deadline_hit and now >= self.deadline_at:
                        self.deadline_hit = True
                        self._cancel_now(f"the deadline of {self.deadline_seconds} s passed")
                except Exception as exc:
                    logger.exception("job %s: writing its record failed", self.job.pk)
                    self._errors.append(exc)
                    self.cancel_event.set()
                    close_old_connections()
        finally:
            connections.close_all()

    def _beat(self) -> None:
        if not self.job.heartbeat():
            # Ended meanwhile (the reaper gave up on this worker): stop doing work for it.
            self.lost = True
            self.cancel_event.set()
            return
        self._check_cancel()

    def _check_cancel(self) -> None:
        fields = ("cancel_requested_at", "status", "cancel_requested_by_name")
        row = Job.objects.filter(pk=self.job.pk).values(*fields).first()
        if row and row["cancel_requested_at"] and not self.cancel_event.is_set():
            self.cancelled_by = row["cancel_requested_by_name"] or "an unknown user"
            self._cancel_now(f"cancel requested by {self.cancelled_by}")
        if row and row["status"] != JobStatus.RUNNING:
            self.lost = True
            self.cancel_event.set()

    def _cancel_now(self, why: str) -> None:
        with self._lock:
            running = next(iter(self._running), None)
            self.step_at_cancel = _label(running) if running else ""
            self._new_chunk(None, "", LogStream.PANEL, f"{why}; stopping\n")
        self.cancel_event.set()
