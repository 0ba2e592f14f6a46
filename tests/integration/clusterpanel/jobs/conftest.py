"""A worker for the jobs tests: real Redis (its own database), real Celery, the test kinds.

Threads, four at a time, so that a read-only job can run beside a mutating one; a 1-second
heartbeat so that a cancel is seen quickly. The test process sends its task messages to this
worker's broker while a test that asks for ``jobs_worker`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tests.jobkinds  # noqa: F401 - the test kinds, in this process too
from clusterpanel.celery import app
from tests import services

FAST = {"CLUSTERPANEL_JOB_HEARTBEAT_INTERVAL": "1"}
THREADS = ("--pool", "threads", "--concurrency", "4", "--without-mingle", "--without-gossip")


def broker_db(url: str, db: int) -> str:
    return f"{url.rsplit('/', 1)[0]}/{db}"


@pytest.fixture(scope="session")
def _jobs_worker_url(
    redis_url: str, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = broker_db(redis_url, 2)
    log = tmp_path_factory.mktemp("jobs-worker") / "worker.log"
    env = {**worker_env, **FAST, "REDIS_URL": url}
    with services.celery_worker(env, "jobs", log, THREADS, include=("tests.jobkinds",)):
        yield url


@pytest.fixture
def jobs_worker(_jobs_worker_url: str) -> Iterator[str]:
    """The jobs worker's broker URL; launches in this test send their messages there."""
    with broker(_jobs_worker_url):
        yield _jobs_worker_url


class broker:
    """Point the Celery app's broker at ``url`` for a while (dispatch opens a connection to
    the broker configured at that moment)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        self.saved = app.conf.broker_url
        app.conf.broker_url = self.url

    def __exit__(self, *exc: Any) -> None:
        app.conf.broker_url = self.saved
