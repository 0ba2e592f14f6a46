"""A real Celery worker runs tasks that write to the database, over a real Redis
and over the embedded filesystem broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clusterpanel.celery import app
from clusterpanel.models import WorkerHeartbeat
from clusterpanel.tasks import heartbeat
from tests import services


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_redis_writes_to_the_database(redis_worker: str) -> None:
    WorkerHeartbeat.objects.all().delete()
    with app.connection_for_write(redis_worker) as connection:
        heartbeat.apply_async(connection=connection)
    services.wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname__startswith="redis@").exists(),
        30,
        "heartbeat row from the Redis worker",
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_embedded_broker_writes_to_the_database(
    worker_env: dict[str, str], tmp_path: Path, settings: Any
) -> None:
    # No REDIS_URL: the worker and this process share the filesystem broker
    # folders under the data directory.
    assert settings.CELERY_BROKER_URL.startswith("clusterpanel-filesystem://")
    WorkerHeartbeat.objects.all().delete()
    with services.celery_worker(worker_env, "embedded", tmp_path / "worker.log"):
        heartbeat.delay()
        services.wait_for(
            lambda: WorkerHeartbeat.objects.filter(hostname__startswith="embedded@").exists(),
            30,
            "heartbeat row from the embedded-broker worker",
        )


@pytest.mark.django_db(transaction=True)
def test_healthz_reports_a_recent_worker(client: Any, redis_worker: str) -> None:
    with app.connection_for_write(redis_worker) as connection:
        heartbeat.apply_async(connection=connection)
    services.wait_for(lambda: WorkerHeartbeat.objects.exists(), 30, "heartbeat row for /healthz")
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["worker"] == "ok"
