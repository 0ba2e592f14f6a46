"""Page and API-list render times against a full-size fleet (``bench.seed``) on PostgreSQL.

Each page is rendered ``--runs`` times in-process by Django's test client, logged in as a
viewer (the API lists with the same user), after one warm-up render; printed per page: the
median and p95 render time and the queries of one render. The cluster and job pages are those
of the first seeded cluster (the one with health history) and its newest job.

Without ``--database-url`` a throwaway PostgreSQL is started (``tests.services``), migrated and
seeded at full size (timed); with it, the database named is used as it is (seeded before).

Run (from the repository root): ``.venv/bin/python -m bench.pages [--runs K]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_MS = 150.0
PAGES = (
    ("dashboard", "/"),
    ("cluster list", "/clusters/"),
    ("cluster page", "/clusters/{cluster}/"),
    ("cluster certificates", "/clusters/{cluster}/certificates/"),
    ("cluster health", "/clusters/{cluster}/health/"),
    ("cluster jobs", "/clusters/{cluster}/jobs/"),
    ("fleet expiry table", "/certificates/fleet/"),
    ("findings", "/findings/"),
    ("jobs list", "/jobs/"),
    ("job page", "/jobs/{job}/"),
    ("API clusters", "/api/v1/clusters/"),
    ("API nodes", "/api/v1/nodes/"),
    ("API certificates", "/api/v1/certificates/"),
    ("API fleet expiry", "/api/v1/certificates/fleet/"),
    ("API jobs", "/api/v1/jobs/"),
    ("API job", "/api/v1/jobs/{job}/"),
    ("API findings", "/api/v1/findings/"),
    ("API health events", "/api/v1/health-events/"),
)


@contextlib.contextmanager
def _database(url: str | None, workdir: Path) -> Iterator[tuple[str, bool]]:
    """(DATABASE_URL, whether it must be seeded)."""
    if url:
        yield url, False
        return
    from tests import services

    with services.postgres_server(workdir / "pg") as fresh:
        yield fresh, True


def _django(workdir: Path, url: str) -> None:
    os.environ.setdefault("CLUSTERPANEL_DATA_DIR", str(workdir / "data"))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "clusterpanel.settings"
    from tests import services

    services.bootstrap_data_dir(dict(os.environ))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()


def _targets() -> dict[str, int]:
    from clusterpanel.jobs.models import Job
    from nodes.models import Cluster

    cluster = Cluster.objects.order_by("pk").first()
    if cluster is None:
        raise SystemExit("the database holds no cluster: seed it first (python -m bench.seed)")
    job = Job.objects.filter(cluster=cluster).order_by("-created_at", "-id").first()
    if job is None:
        raise SystemExit(f"cluster {cluster.name} has no job")
    return {"cluster": cluster.pk, "job": job.pk}


def _viewer() -> Any:
    from django.contrib.auth.models import Group, User

    user, created = User.objects.get_or_create(username="bench-viewer")
    if created:
        user.groups.add(Group.objects.get(name="viewer"))
    return user


class _Counter:
    """An execute wrapper counting the queries run through it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def measure(runs: int) -> list[tuple[str, str, float, float, float, int]]:
    """(name, URL, median ms, p95 ms, fastest ms, queries) per page."""
    from django.db import connection
    from django.test import Client
    from rest_framework.test import APIClient

    user = _viewer()
    web, api = Client(), APIClient()
    web.force_login(user)
    api.force_authenticate(user)
    targets = _targets()
    out = []
    for name, pattern in PAGES:
        url = pattern.format(**targets)
        client = api if url.startswith("/api/") else web
        # Counted by a wrapper, which outlives the connection each request closes.
        queries = _Counter()
        with connection.execute_wrapper(queries):
            response = client.get(url)  # warm-up; its queries are counted
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out.append((name, url, statistics.median(times), p95, times[0], queries.count))
    return out


def _counts() -> dict[str, int]:
    from clusterpanel.jobs.models import Job, JobLogChunk
    from nodes.models import Cluster, HealthSample, Node
    from pki.models import Certificate

    return {
        m._meta.verbose_name_plural: m.objects.count()
        for m in (Cluster, Node, Certificate, Job, JobLogChunk, HealthSample)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="renders per page")
    parser.add_argument("--database-url", help="a seeded database (default: a fresh one)")
    parser.add_argument("--clusters", type=int, default=1000, help="fleet size to seed")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    with tempfile.TemporaryDirectory(prefix="clusterpanel-bench-") as directory:
        # PostgreSQL runs as its own user, which must pass through to its data directory here.
        os.chmod(directory, 0o711)  # noqa: S103 - traverse only, nothing listed or read
        with _database(args.database_url, Path(directory)) as (url, fresh):
            _run(args, Path(directory), url, fresh)


def _run(args: argparse.Namespace, directory: Path, url: str, fresh: bool) -> None:
    _django(directory, url)
    if fresh:
        from bench.seed import Size, seed

        started = time.monotonic()
        seed(Size(clusters=args.clusters))
        print(f"seed: {time.monotonic() - started:.0f} s\n")
    print(", ".join(f"{count:,} {name}" for name, count in _counts().items()), "\n")
    rows = measure(args.runs)
    # The fastest render is the best estimate of an idle machine when others share it.
    print(
        f"| page | URL | median (ms) | p95 (ms) | fastest (ms) | queries | p95 < {GOAL_MS:g} ms |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for name, url, median, p95, fastest, queries in rows:
        ok = "yes" if p95 < GOAL_MS else "**no**"
        print(f"| {name} | `{url}` | {median:.0f} | {p95:.0f} | {fastest:.0f} | {queries} | {ok} |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
