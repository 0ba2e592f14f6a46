"""The one runner of every job, and the reaper of jobs whose worker died.

``run`` claims the job (queued → running, exactly once: a duplicated message runs nothing),
hands the kind a reporter, and ends the job in a terminal state with one sentence: the kind's
own, a ``JobFailed`` sentence (``failed``), or, for anything else, ``errored`` with the
traceback kept for administrators (NetBox's ``JobRunner.handle``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusterpanel.jobs import registry
from clusterpanel.jobs.models import Job, JobStatus, StepStatus
from clusterpanel.jobs.registry import JobFailed
from clusterpanel.jobs.reporting import JobReporter

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "the job hit an internal error: {}; the traceback is kept for administrators"
LOST_WORKER = (
    "the worker running this job was lost (no heartbeat for {} s); "
    "steps that were running are marked failed"
)


def _did_not_run(counts: dict[str, int]) -> int:
    return counts.get(StepStatus.CANCELLED, 0) + counts.get(StepStatus.PENDING, 0)


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


def run(job_id: int) -> str:
    """Run job ``job_id`` if it is still queued; returns what happened, for the task log."""
    job = Job.objects.filter(pk=job_id).select_related("cluster").first()
    if job is None:
        return "missing"
    if not job.start():
        return f"not queued ({job.status})"
    reporter = JobReporter(job)
    reporter.begin()
    status: str
    explanation = ""
    kept_traceback = ""
    try:
        kind = registry.get(job.kind)
        result = kind.run(job, reporter)
        status, explanation = result.status, result.explanation
    except JobFailed as exc:
        status, explanation = JobStatus.FAILED, str(exc) or "the job failed"
    except Exception as exc:
        logger.exception("job %s (%s) hit an internal error", job.pk, job.kind)
        status = JobStatus.ERRORED
        explanation = INTERNAL_ERROR.format(type(exc).__name__)
        kept_traceback = traceback.format_exc()
        reporter.note(explanation)
    stopped = reporter.cancel_event.is_set() and status != JobStatus.SUCCEEDED
    try:
        counts = reporter.close(cancelled=stopped)
    except Exception as exc:
        logger.exception("job %s: its record could not be completed", job.pk)
        job.fail(INTERNAL_ERROR.format(type(exc).__name__), traceback.format_exc(), errored=True)
        return JobStatus.ERRORED
    if stopped and status != JobStatus.ERRORED:
        where = reporter.step_at_cancel
        during = f"during {where}" if where else "between steps"
        left = _steps(_did_not_run(counts))
        if reporter.deadline_hit:
            status = JobStatus.FAILED
            explanation = (
                f"the job did not finish within its deadline of {job.deadline_seconds} s "
                f"(stopped {during}); {left} did not run"
            )
        elif reporter.cancelled_by:
            status = JobStatus.CANCELLED
            explanation = f"cancelled by {reporter.cancelled_by} {during}; {left} did not run"
    if not explanation:
        explanation = f"the job {status}"
    if not job.finish(status, explanation, kept_traceback):
        # The reaper ended it meanwhile; its sentence stands.
        return "ended elsewhere"
    return status


def reap(
    now: datetime | None = None, dispatch: Callable[[Job], None] | None = None
) -> dict[str, int]:
    """End running jobs whose heartbeat stopped; send queued jobs nobody claimed once more.

    A queued job is never ended here: a busy worker pool is no lost message. Its message is
    sent again once, after ``CLUSTERPANEL_JOB_REDISPATCH_AFTER`` seconds (a duplicate is
    harmless: the claim runs a job once); after that it waits for a worker or a cancel.
    """
    now = now or timezone.now()
    timeout = int(settings.CLUSTERPANEL_JOB_HEARTBEAT_TIMEOUT)
    cutoff = now - timedelta(seconds=timeout)
    reaped = 0
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff):
        assert job.heartbeat_at is not None
        silent = int((now - job.heartbeat_at).total_seconds())
        with transaction.atomic():
            ended = Job.objects.filter(
                pk=job.pk, status=JobStatus.RUNNING, heartbeat_at__lt=cutoff
            ).update(
                status=JobStatus.ERRORED, finished_at=now, explanation=LOST_WORKER.format(silent)
            )
            if not ended:
                continue
            job.steps.filter(status=StepStatus.RUNNING).update(
                status=StepStatus.FAILED, finished_at=now, message="the worker was lost"
            )
            job.steps.filter(status=StepStatus.PENDING).update(
                status=StepStatus.CANCELLED, finished_at=now, message="did not run"
            )
        logger.warning("job %s: no heartbeat for %s s, ended as errored", job.pk, silent)
        reaped += 1
    redispatched = 0
    if dispatch is not None:
        waited = now - timedelta(seconds=int(settings.CLUSTERPANEL_JOB_REDISPATCH_AFTER))
        stale = Job.objects.filter(
            status=JobStatus.QUEUED, redispatched_at__isnull=True, created_at__lt=waited
        )
        for job in stale:
            if Job.objects.filter(pk=job.pk, redispatched_at__isnull=True).update(
                redispatched_at=now
            ):
                dispatch(job)
                redispatched += 1
    return {"reaped": reaped, "redispatched": redispatched}
