"""Panel-level Celery tasks."""

from __future__ import annotations

import socket

from celery import shared_task
from celery.signals import worker_ready
from django.utils import timezone

from clusterpanel.jobs import tasks as job_tasks  # noqa: F401 - the jobs' tasks, for the worker
from clusterpanel.models import WorkerHeartbeat


@shared_task(name="clusterpanel.tasks.heartbeat")
def heartbeat() -> str:
    """Record that a worker is alive; /healthz shows the newest heartbeat."""
    hostname = heartbeat.request.hostname or socket.gethostname()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )
    return hostname


@worker_ready.connect
def _first_heartbeat(**kwargs: object) -> None:
    # Report in at once rather than after beat's first 30-second interval.
    heartbeat.delay()
