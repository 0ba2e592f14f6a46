"""The pages and API lists read a constant number of queries, whatever the size of the fleet.

The rows come from the benchmark seed (``bench.seed``) at two sizes: a small fleet, then a
larger one added beside it with more nodes, certificates, jobs, steps and log chunks per
cluster. A list is rendered with the small fleet alone and again with both; a page of one
object (a cluster, a job) is rendered for an object of each fleet. Each must take the same
number of queries: a query per row (an N+1) shows up as a difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bench.seed import Size, seed
from clusterpanel.jobs.models import Job
from nodes.models import Cluster

SMALL = Size(
    clusters=3, nodes_per_cluster=5, certificates_per_cluster=40, jobs_per_cluster=4,
    steps_per_job=2, chunks_per_job=6, history_clusters=1, history_days=1, sample_minutes=60,
    events_per_cluster=3, findings_per_cluster=2, scanned_per_node=2,
)  # fmt: skip
LARGE = Size(
    clusters=27, nodes_per_cluster=12, certificates_per_cluster=120, jobs_per_cluster=10,
    steps_per_job=8, chunks_per_job=60, history_clusters=1, history_days=1, sample_minutes=60,
    events_per_cluster=12, findings_per_cluster=5, scanned_per_node=4,
)  # fmt: skip

LISTS = (
    "/",
    "/clusters/",
    "/certificates/fleet/",
    "/findings/",
    "/jobs/",
    "/api/v1/clusters/",
    "/api/v1/nodes/",
    "/api/v1/certificates/",
    "/api/v1/certificates/fleet/",
    "/api/v1/jobs/",
    "/api/v1/findings/",
    "/api/v1/health-events/",
)
# Pages of one cluster or job: ``{cluster}`` / ``{job}`` filled in with an object of each fleet.
OBJECT_PAGES = (
    "/clusters/{cluster}/",
    "/clusters/{cluster}/certificates/",
    "/clusters/{cluster}/health/",
    "/clusters/{cluster}/jobs/",
    "/jobs/{job}/",
    "/api/v1/clusters/{cluster}/",
    "/api/v1/jobs/{job}/",
    "/api/v1/nodes/?cluster={cluster}",
    "/api/v1/certificates/?cluster={cluster}",
)


def _count(get: Callable[[str], Any], url: str) -> int:
    get(url)  # warm: sessions, content types and other per-process caches
    with CaptureQueriesContext(connection) as queries:
        response = get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def _objects(prefix: str) -> dict[str, int]:
    """The first cluster of a fleet (the one with health history) and its newest job."""
    cluster = Cluster.objects.filter(name__startswith=f"{prefix}-").order_by("pk").first()
    assert cluster is not None
    job = Job.objects.filter(cluster=cluster).order_by("-created_at").first()
    assert job is not None
    return {"cluster": cluster.pk, "job": job.pk}


def test_pages_and_api_lists_take_the_same_queries_for_a_small_and_a_larger_fleet(
    personas: dict[str, Any],
) -> None:
    web = Client()
    web.force_login(personas["viewer"])
    api = APIClient()
    api.force_authenticate(personas["viewer"])

    def get(url: str) -> Any:
        return (api if url.startswith("/api/") else web).get(url)

    quiet = lambda _line: None  # noqa: E731
    seed(SMALL, log=quiet, prefix="small")
    small = {url: _count(get, url) for url in LISTS}
    small_objects = _objects("small")
    small.update({url: _count(get, url.format(**small_objects)) for url in OBJECT_PAGES})

    seed(LARGE, log=quiet, prefix="large")
    large = {url: _count(get, url) for url in LISTS}
    large_objects = _objects("large")
    large.update({url: _count(get, url.format(**large_objects)) for url in OBJECT_PAGES})

    differing = {url: (small[url], large[url]) for url in small if small[url] != large[url]}
    assert differing == {}, f"queries (small fleet, larger fleet) differ: {differing}"
    # The larger fleet was really larger where it matters for these pages.
    job = Job.objects.get(pk=large_objects["job"])
    assert job.steps.count() == LARGE.steps_per_job and job.chunks.count() == LARGE.chunks_per_job
    assert Cluster.objects.count() == SMALL.clusters + LARGE.clusters
