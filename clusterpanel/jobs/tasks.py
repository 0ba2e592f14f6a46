"""The Celery tasks of jobs: run one, and reap the lost ones (beat, every 30 s).

``run_job`` is acknowledged late, so a message survives a worker that dies before running it;
``reject_on_worker_lost=False`` keeps a job whose worker died *while* running it from being
run again on another worker: the reaper ends it instead, with a sentence saying so.
"""

from __future__ import annotations

import logging

from celery import shared_task

from clusterpanel.celery import app
from clusterpanel.jobs import runner
from clusterpanel.jobs.models import Job

logger = logging.getLogger(__name__)


@shared_task(
    name="clusterpanel.jobs.run_job",
    acks_late=True,
    reject_on_worker_lost=False,
    ignore_result=True,
)
def run_job(job_id: int) -> str:
    return runner.run(job_id)


@shared_task(name="clusterpanel.jobs.reap_jobs", ignore_result=True)
def reap_jobs() -> dict[str, int]:
    return runner.reap(dispatch=dispatch)


def dispatch(job: Job) -> None:
    """Send the job's task message. A broker that is down leaves the job queued (logged):
    the reaper sends the message again later; the request that launched it still succeeds."""
    try:
        # A fresh connection to the broker configured now (tests point it at their Redis).
        with app.connection_for_write() as connection:
            run_job.apply_async((job.pk,), task_id=job.task_id or None, connection=connection)
    except Exception:
        logger.exception("job %s: its task message could not be sent; the reaper retries", job.pk)
