"""Session-wide real services for integration tests: one Redis, one worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests import services


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def worker_env(django_db_setup: Any, django_db_blocker: Any) -> dict[str, str]:
    """Environment for a worker process that shares the test database and keys."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
        url = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        url = f"sqlite://{Path(db['NAME']).resolve()}"
    return {"CLUSTERPANEL_DATA_DIR": str(settings.DATA_DIR), "DATABASE_URL": url}


@pytest.fixture(scope="session")
def redis_worker(
    redis_url: str, worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One Celery worker on the session's Redis; yields the broker URL."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with services.celery_worker({**worker_env, "REDIS_URL": redis_url}, "redis", log):
        yield redis_url
