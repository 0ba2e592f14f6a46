"""Session-wide real services for integration and browser tests: one Redis, one worker, the
shared sshd hosts."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import tests.jobkinds  # noqa: F401 - the test-only job kinds, in this process too
from clusterpanel.celery import app
from tests import hosts, services


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


# Test hosts: real sshd "machines" on loopback (tests/hosts.py). One address block per xdist
# worker, so that two workers never bind the same address; throwaway hosts use block + 100.


@pytest.fixture(scope="session")
def test_hosts_dir() -> Iterator[Path]:
    """A world-traversable directory for the hosts' files: their non-root users read it too
    (pytest's own temp directories are private to root)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"clusterpanel-hosts-{hosts.xdist_block()}-"))
    workdir.chmod(0o755)
    yield workdir
    hosts.remove_workdir(workdir)


@pytest.fixture(scope="session")
def ssh_client_key_pair(test_hosts_dir: Path) -> tuple[str, str]:
    """The session's Ed25519 client key: (private key text, public key line)."""
    return hosts.client_key(test_hosts_dir / "client-keys", "clusterpanel-tests")


@pytest.fixture(scope="session")
def ssh_client_key(ssh_client_key_pair: tuple[str, str]) -> str:
    """The private key (OpenSSH text) that logs in to every test host as every user."""
    return ssh_client_key_pair[0]


@pytest.fixture(scope="session")
def test_hosts(
    test_hosts_dir: Path, ssh_client_key_pair: tuple[str, str]
) -> Iterator[list[hosts.TestHost]]:
    """Five hosts, node-1 … node-5 on 127.0.<block>.1-5, shared by every integration test:
    do not stop them or change their keys (use ``make_test_hosts`` for that)."""
    specs = [hosts.HostSpec(f"node-{i}") for i in range(1, 6)]
    with hosts.start_hosts(
        specs,
        test_hosts_dir / "shared",
        hosts.xdist_block(),
        client_public_key=ssh_client_key_pair[1],
    ) as started:
        yield started


_throwaway_numbers = itertools.count()


@pytest.fixture
def make_test_hosts(
    test_hosts_dir: Path, ssh_client_key_pair: tuple[str, str]
) -> Iterator[Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]]:
    """Throwaway hosts for destructive tests (stop, key swap): ``make_test_hosts([HostSpec(…)])``
    starts them on 127.0.<block + 100>.x; all are stopped after the test."""
    with contextlib.ExitStack() as stack:

        def make(specs: Sequence[hosts.HostSpec]) -> list[hosts.TestHost]:
            # Fresh addresses every time: a stopped host's sockets may still linger.
            first = next(_throwaway_numbers) % 200 + 1
            for _ in specs[1:]:
                next(_throwaway_numbers)
            return stack.enter_context(
                hosts.start_hosts(
                    specs,
                    test_hosts_dir / "throwaway",
                    hosts.xdist_block() + 100,
                    client_public_key=ssh_client_key_pair[1],
                    first=first,
                )
            )

        yield make


# Jobs: a worker on its own Redis database that also knows the test-only job kinds
# (tests/jobkinds.py). Threads, four at a time, so that a read-only job can run beside a
# mutating one; a 1-second heartbeat so that a cancel is seen quickly. A test that asks for
# ``jobs_worker`` sends its task messages to this worker's broker.

FAST = {"CLUSTERPANEL_JOB_HEARTBEAT_INTERVAL": "1"}
THREADS = ("--pool", "threads", "--concurrency", "4", "--without-mingle", "--without-gossip")


def broker_db(url: str, db: int) -> str:
    return f"{url.rsplit('/', 1)[0]}/{db}"


@pytest.fixture(scope="session")
def jobs_worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The jobs worker's log file (its stdout and stderr): tests read what the worker logged."""
    return tmp_path_factory.mktemp("jobs-worker") / "worker.log"


@pytest.fixture(scope="session")
def _jobs_worker_url(
    redis_url: str, worker_env: dict[str, str], jobs_worker_log: Path
) -> Iterator[str]:
    url = broker_db(redis_url, 2)
    log = jobs_worker_log
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
