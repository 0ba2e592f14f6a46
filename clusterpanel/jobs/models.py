"""The record of every job: the Job row, its steps and its output.

The database is the truth; a Celery message only says "look at job N". Every change of a
job's status is a conditional UPDATE (``filter(status=…).update(…)``), so the worker, the
reaper and a user's cancel can race without one overwriting what another decided.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ERRORED = "errored", "Errored"
    CANCELLED = "cancelled", "Cancelled"


# Grouped as NetBox's core/choices.py does: what may still change, and what never will.
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
TERMINAL_STATUSES = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.ERRORED,
    JobStatus.CANCELLED,
)
RETRYABLE_STATUSES = (JobStatus.FAILED, JobStatus.ERRORED, JobStatus.CANCELLED)


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


STEP_DONE_STATUSES = (
    StepStatus.SUCCEEDED,
    StepStatus.FAILED,
    StepStatus.SKIPPED,
    StepStatus.CANCELLED,
)


class LogStream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
    PANEL = "panel", "panel"


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)


class Job(models.Model):
    """One run of a job kind on a cluster (some or all of its nodes): the record of truth.

    The cluster reference is ``SET_NULL`` with ``cluster_name`` kept, so the history of a
    deleted cluster stays readable; a cluster with an active job cannot be deleted at all
    (``clusterpanel.jobs.signals`` refuses it with a 409). ``params`` never hold secrets: a
    kind reads credentials from the inventory when it runs.
    """

    kind = models.CharField(max_length=64, db_index=True)
    cluster = models.ForeignKey(
        "nodes.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    cluster_name = models.CharField(max_length=63, blank=True)
    nodes = models.ManyToManyField("nodes.Node", blank=True, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)
    # The preview shown before launch, kept as launched: what the operator agreed to.
    plan = models.JSONField(default=dict, blank=True)
    mutating = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    launched_by_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=16, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # One sentence for humans, always set when the job is terminal.
    explanation = models.TextField(blank=True)
    # Only for internal errors; shown to admins only.
    traceback = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_seconds = models.PositiveIntegerField(default=3600)
    attempt = models.PositiveIntegerField(default=1)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by_name = models.CharField(max_length=150, blank=True)
    # When the reaper sent the task message again for a job nobody claimed (at most once).
    redispatched_at = models.DateTimeField(null=True, blank=True)
    # The launcher's own name for this launch (the page's form, an API Idempotency-Key): the
    # same key from the same user again is the same launch, not a second job.
    request_key = models.CharField(max_length=64, blank=True, default="")

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One active mutating job per cluster, decided by the database, not by a check
            # that two requests could both pass.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(mutating=True, status__in=["queued", "running"]),
                name="one_active_mutating_job_per_cluster",
            ),
            models.UniqueConstraint(
                fields=["launched_by", "request_key"],
                condition=~models.Q(request_key=""),
                name="one_job_per_request_key",
            ),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} ({self.kind})"

    # --- reading ------------------------------------------------------------------------------

    @property
    def target_node_ids(self) -> list[int]:
        """The node ids the job runs on; on an unsaved Job (a preview) the ones the service set."""
        preset = getattr(self, "_target_node_ids", None)
        if preset is not None:
            return list(preset)
        if self.pk is None:
            return []
        # A list prefetches the nodes (``prefetch_related("nodes")``): no query per job.
        prefetched = getattr(self, "_prefetched_objects_cache", {}).get("nodes")
        if prefetched is not None:
            return sorted(node.pk for node in prefetched)
        return sorted(self.nodes.values_list("pk", flat=True))

    @target_node_ids.setter
    def target_node_ids(self, ids: list[int]) -> None:
        self._target_node_ids = sorted(ids)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    # --- verbs: each a conditional update, True when this call changed the row ------------------

    def start(self) -> bool:
        """Claim a queued job for this worker: queued → running, exactly once."""
        now = timezone.now()
        claimed = Job.objects.filter(pk=self.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
        )
        if claimed:
            self.status, self.started_at, self.heartbeat_at = JobStatus.RUNNING, now, now
        return bool(claimed)

    def heartbeat(self) -> bool:
        """The worker is alive; False when the job is no longer running (reaped, say)."""
        now = timezone.now()
        alive = Job.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(heartbeat_at=now)
        if alive:
            self.heartbeat_at = now
        return bool(alive)

    def finish(self, status: str, explanation: str, traceback: str = "") -> bool:
        """End a running job in a terminal ``status`` with its sentence."""
        return self._end((JobStatus.RUNNING,), status, explanation, traceback)

    def fail(self, explanation: str, traceback: str = "", *, errored: bool = False) -> bool:
        """End a running job ``failed`` (a domain failure) or ``errored`` (an internal one)."""
        status = JobStatus.ERRORED if errored else JobStatus.FAILED
        return self._end((JobStatus.RUNNING,), status, explanation, traceback)

    def cancel(self, by: str) -> str:
        """Cancel: a queued job ends at once, a running one is asked to stop.

        Returns "cancelled", "requested" or "" (nothing to cancel any more)."""
        sentence = f"cancelled by {by or 'an unknown user'} before it started"
        if self._end((JobStatus.QUEUED,), JobStatus.CANCELLED, sentence):
            return "cancelled"
        now = timezone.now()
        asked = Job.objects.filter(
            pk=self.pk, status=JobStatus.RUNNING, cancel_requested_at__isnull=True
        ).update(cancel_requested_at=now, cancel_requested_by_name=by)
        if asked:
            self.cancel_requested_at, self.cancel_requested_by_name = now, by
            return "requested"
        self.refresh_from_db()
        return "requested" if self.status == JobStatus.RUNNING else ""

    def _end(
        self, current: tuple[str, ...], status: str, explanation: str, traceback: str = ""
    ) -> bool:
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal status")
        if not explanation:
            raise ValueError("a terminal job needs an explanation")
        now = timezone.now()
        fields: dict[str, Any] = {
            "status": status,
            "finished_at": now,
            "explanation": explanation,
            "traceback": traceback,
        }
        ended = Job.objects.filter(pk=self.pk, status__in=current).update(**fields)
        if ended:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(ended)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end: datetime = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class JobStep(models.Model):
    """One step of a job on one node (``node`` None: a cross-node step run on the worker).

    ``result`` holds the step's outcome data and checks (JSON). Output byte counts are exact,
    also when the log kept only the head and tail of the output (``dropped_bytes``).
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    phase = models.CharField(max_length=100)
    node = models.ForeignKey(
        "nodes.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    node_name = models.CharField(max_length=253, blank=True)
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    stdout_bytes = models.BigIntegerField(default=0)
    stderr_bytes = models.BigIntegerField(default=0)
    dropped_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="job_step_position_unique"),
            models.UniqueConstraint(
                fields=["job", "phase", "name", "node_name"], name="job_step_key_unique"
            ),
        ]

    def __str__(self) -> str:
        where = f" on {self.node_name}" if self.node_name else ""
        return f"{self.phase}/{self.name}{where}"

    @property
    def is_done(self) -> bool:
        return self.status in STEP_DONE_STATUSES


class JobLogChunk(models.Model):
    """A piece of a job's output, in order: ``seq`` counts up per job, so a reader asks for
    everything after the last ``seq`` it saw (gaps are fine: a step's dropped middle is
    deleted at the step's end and replaced by a marker chunk)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    step = models.ForeignKey(
        JobStep, null=True, blank=True, on_delete=models.CASCADE, related_name="chunks"
    )
    seq = models.PositiveIntegerField()
    node_name = models.CharField(max_length=253, blank=True)
    stream = models.CharField(max_length=8, choices=LogStream.choices)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["job", "seq"], name="job_log_chunk_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.seq} {self.stream}"
