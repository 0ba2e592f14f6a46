"""The health pages and API: the dashboard grid (clusters x components, worst status in words
and colour, constant queries), the cluster's Health tab (checks, sparklines, transitions,
polling only while visible, Check now), and the API's current health and transitions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nodes.health import node_checks, services
from nodes.health.probes import ProbeResult
from nodes.models import Cluster, HealthSample, Node
from tests.factories import make_cluster, make_node

STATUSES = ("healthy", "degraded", "unhealthy", "unknown")


def _round(cluster: Cluster, node: Node, statuses: dict[str, str], at: Any) -> None:
    """Store one round's results through the same code a real round uses."""
    rows = [
        (
            component,
            None if component.startswith("kube-apiserver") else node.pk,
            target,
            ProbeResult(status, latency, f"{component} is {status}"),
        )
        for (component, target, latency), status in (
            ((services.APISERVER_LIVEZ, "https://lb:6443", 12.0), statuses.get("livez", "healthy")),
            ((services.ETCD, "https://10.0.0.11:2379", 3.0), statuses.get("etcd", "healthy")),
            ((services.ETCD_ALARMS, "etcd cluster", 1.0), statuses.get("alarms", "healthy")),
            (
                (node_checks.KUBELET, "http://127.0.0.1:10248/healthz", 5.0),
                statuses.get("kubelet", "healthy"),
            ),
            ((services.SSH, "10.0.0.11:22", 40.0), statuses.get("ssh", "healthy")),
        )
    ]
    services.record(cluster, rows, at)


def _cluster_with_checks(name: str, statuses: dict[str, str], rounds: int = 1) -> Cluster:
    cluster = make_cluster(name)
    node = make_node(cluster)
    now = timezone.now()
    for i in range(rounds):
        _round(
            cluster,
            node,
            statuses if i == rounds - 1 else {},
            now - timedelta(minutes=30 * (rounds - 1 - i)),
        )
    return cluster


@pytest.mark.django_db
def test_the_dashboard_grid_shows_each_clusters_worst_status_in_words_and_colour(
    web_client: Callable[[str], Any],
) -> None:
    clusters = {
        status: _cluster_with_checks(f"c-{status}", {"kubelet": status}) for status in STATUSES
    }
    # etcd's column sums up the members and the alarms: one unhealthy part makes it unhealthy.
    alarmed = _cluster_with_checks("c-alarm", {"alarms": "unhealthy"})
    make_cluster("c-unchecked")

    response = web_client("viewer").get("/")
    html = response.content.decode()
    grid = {row.cluster.name: row.cells for row in response.context["health_grid"]}
    columns = response.context["health_columns"]
    assert columns == [
        "apiserver livez",
        "apiserver readyz",
        "etcd",
        "controller-manager",
        "scheduler",
        "kubelet",
        "kube-proxy",
        "runtime",
        "ssh",
    ]
    kubelet, etcd = columns.index("kubelet"), columns.index("etcd")
    for status, cluster in clusters.items():
        assert grid[cluster.name][kubelet] == status
        link = (
            f'<a class="badge health-{status}" href="/clusters/{cluster.pk}/health/">{status}</a>'
        )
        assert link in html
    assert grid["c-healthy"][columns.index("apiserver readyz")] is None  # never checked
    assert grid["c-alarm"][etcd] == "unhealthy"
    assert grid["c-healthy"][etcd] == "healthy"
    assert grid["c-unchecked"] == [None] * len(columns)
    assert f'href="/clusters/{alarmed.pk}/health/">c-alarm</a>' in html
    # The grid re-fetches itself every 30 s while the page is visible (panel.js): the fragment
    # alone, with the same cells.
    assert 'hx-trigger="every 30s, panel:visible"' in html and "data-poll-visible" in html
    fragment = web_client("viewer").get("/", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section id="health-grid"') and "<html" not in body
    assert {row.cluster.name: row.cells for row in fragment.context["health_grid"]} == grid


def _dashboard_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_dashboard_queries_do_not_grow_with_clusters_and_nodes(
    web_client: Callable[[str], Any], django_assert_max_num_queries: Any
) -> None:
    client = web_client("viewer")
    for i in range(2):
        _cluster_with_checks(f"few-{i}", {})
    few = _dashboard_queries(client)
    for i in range(18):
        cluster = _cluster_with_checks(f"many-{i}", {"ssh": "unhealthy"})
        make_node(cluster, "worker")
    assert _dashboard_queries(client) == few
    with django_assert_max_num_queries(few):
        client.get("/")


@pytest.mark.django_db
def test_the_health_tab_shows_checks_sparklines_transitions_and_polls_only_while_visible(
    web_client: Callable[[str], Any],
) -> None:
    cluster = _cluster_with_checks("tab", {"kubelet": "unhealthy"}, rounds=4)
    page = web_client("viewer").get(f"/clusters/{cluster.pk}/health/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<a href="/clusters/{cluster.pk}/health/" aria-current="page">Health</a>' in html
    checks = {row.health.component: row for row in page.context["checks"]}
    assert set(checks) == {
        services.APISERVER_LIVEZ,
        services.ETCD,
        services.ETCD_ALARMS,
        node_checks.KUBELET,
        services.SSH,
    }
    kubelet = checks[node_checks.KUBELET]
    assert kubelet.health.status == "unhealthy"
    assert '<span class="badge health-unhealthy">unhealthy</span>' in html
    assert "kubelet is unhealthy" in html
    assert "5.0 ms" in html and "http://127.0.0.1:10248/healthz" in html
    # Four rounds 30 min apart: four points on the sparkline, drawn with SVG attributes only.
    assert kubelet.spark is not None and kubelet.spark.count == 4
    assert len(kubelet.spark.points.split()) == 4
    assert f'points="{kubelet.spark.points}"' in html
    assert '<svg class="sparkline"' in html and "style=" not in html.split("<main", 1)[-1]
    assert kubelet.health.checked_at.strftime("%Y-%m-%d %H:%M:%S") in html
    # The transitions: every check's first result, then kubelet's healthy -> unhealthy.
    events = page.context["events"]
    assert (events[0].component, events[0].from_status, events[0].to_status) == (
        node_checks.KUBELET,
        "healthy",
        "unhealthy",
    )
    assert len(events) == 6
    # The poller: htmx every 10 s, held back by panel.js while the page is hidden.
    assert 'hx-trigger="every 10s, panel:visible"' in html and "data-poll-visible" in html
    # What the poller gets: the fragment alone.
    fragment = web_client("viewer").get(f"/clusters/{cluster.pk}/health/", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="health-panel"')
    assert "<html" not in body and "kubelet is unhealthy" in body
    # Viewers see no Check now.
    assert 'id="check-now"' not in html


def _tab_queries(client: Any, cluster: Cluster) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/clusters/{cluster.pk}/health/").status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_sparklines_are_reduced_in_the_database_and_the_tab_queries_are_constant(
    web_client: Callable[[str], Any],
) -> None:
    from nodes.health import pages

    cluster = make_cluster("buckets")
    node = make_node(cluster)
    now = timezone.now()
    # Two hours ago, at the start of a quarter hour: three rounds in that quarter, one in the
    # next; each bucket is one point, its highest latency at its last sample's time.
    quarter = (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    quarter -= timedelta(minutes=quarter.minute % 15)
    times = [quarter + timedelta(minutes=m) for m in (1, 5, 9, 20)]
    for at, latency in zip(times, (5.0, 50.0, 7.0, 3.0), strict=True):
        row = (node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz",
               ProbeResult("healthy", latency, "ok"))  # fmt: skip
        services.record(cluster, [row], at)
    old = (node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz",
           ProbeResult("healthy", 900.0, "ok"))  # fmt: skip
    services.record(cluster, [old], now - timedelta(hours=25))  # older than the sparkline's day
    series = pages.spark_buckets(cluster, now - pages.HISTORY)
    points, samples = series[(node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz")]
    assert [(at, latency) for at, latency in points] == [(times[2], 50.0), (times[3], 3.0)]
    assert samples == 4
    (row,) = pages.checks(cluster, now)
    assert row.spark is not None and row.spark.count == 4 and row.spark.max_ms == 50.0
    assert len(row.spark.points.split()) == 2

    # The Health tab's queries do not grow with the nodes and their samples.
    client = web_client("viewer")
    small = _cluster_with_checks("one-node", {}, rounds=3)
    large = make_cluster("ten-nodes")
    members = [make_node(large, name=f"n-{i}", address=f"10.0.1.{i + 1}") for i in range(10)]
    for r in range(3):
        rows = [
            (component, member.pk, target, ProbeResult("healthy", 4.0 + r, "ok"))
            for member in members
            for component, target in (
                (node_checks.KUBELET, "http://127.0.0.1:10248/healthz"),
                (services.SSH, f"{member.address}:22"),
                (services.ETCD, f"https://{member.address}:2379"),
            )
        ]
        services.record(large, rows, now - timedelta(minutes=30 * r))
    page = client.get(f"/clusters/{large.pk}/health/")
    assert len(page.context["checks"]) == 30
    assert all(row.spark is not None and row.spark.count == 3 for row in page.context["checks"])
    assert _tab_queries(client, small) == _tab_queries(client, large)


@pytest.mark.django_db
def test_a_sparkline_bucket_starts_on_the_quarter_hour_to_the_microsecond() -> None:
    from nodes.health import pages

    cluster = make_cluster("edges")
    node = make_node(cluster)
    now = timezone.now()
    quarter = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
    quarter -= timedelta(minutes=quarter.minute % 15)
    tick = timedelta(microseconds=1)
    # The last microsecond of a quarter, its first, its last: two buckets, each point the time
    # of its bucket's last sample, exactly.
    edges = [quarter - tick, quarter, quarter + pages.SPARK_BUCKET - tick]
    for at, latency in zip(edges, (8.0, 2.0, 6.0), strict=True):
        row = (node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz",
               ProbeResult("healthy", latency, "ok"))  # fmt: skip
        services.record(cluster, [row], at)
    series = pages.spark_buckets(cluster, now - pages.HISTORY)
    points, samples = series[(node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz")]
    assert points == [(edges[0], 8.0), (edges[2], 6.0)]
    assert samples == 3


@pytest.mark.django_db
def test_the_rounds_of_a_quarter_hour_merge_into_one_sample_per_check() -> None:
    """At the default 60 s interval a quarter hour has 15 rounds: the history keeps one row per
    check with the highest latency (what the sparkline draws), the last status and time and the
    number of rounds, not 15 rows."""
    from nodes.health import pages

    cluster = make_cluster("merged")
    node = make_node(cluster)
    kubelet = (node_checks.KUBELET, node.pk, "http://127.0.0.1:10248/healthz")
    ssh = (services.SSH, node.pk, f"{node.address}:22")
    start = services.bucket_start(timezone.now() - timedelta(hours=2))
    rounds = [(5.0, "healthy"), (50.0, "unhealthy"), (7.0, "healthy")]
    for minute, (latency, status) in enumerate(rounds):
        rows = [(*check, ProbeResult(status, latency, "m")) for check in (kubelet, ssh)]
        services.record(cluster, rows, start + timedelta(minutes=minute))
    services.record(
        cluster, [(*kubelet, ProbeResult("healthy", 1.0, "m"))], start + pages.SPARK_BUCKET
    )
    history = HealthSample.objects.filter(cluster=cluster, component=node_checks.KUBELET)
    assert [(s.samples, s.latency_ms, s.status, s.checked_at) for s in history.order_by("pk")] == [
        (3, 50.0, "healthy", start + timedelta(minutes=2)),
        (1, 1.0, "healthy", start + pages.SPARK_BUCKET),
    ]
    assert HealthSample.objects.filter(cluster=cluster, component=services.SSH).count() == 1
    points, samples = pages.spark_buckets(cluster, start - timedelta(hours=1))[kubelet]
    assert points == [(start + timedelta(minutes=2), 50.0), (start + pages.SPARK_BUCKET, 1.0)]
    assert samples == 4


@pytest.mark.django_db
def test_a_round_of_a_cluster_deleted_while_it_ran_records_nothing() -> None:
    cluster = make_cluster("gone")
    node = make_node(cluster)
    row = (services.SSH, node.pk, f"{node.address}:22", ProbeResult("healthy", 1.0, "ok"))
    Cluster.objects.filter(pk=cluster.pk).delete()
    services.record(cluster, [row], timezone.now())  # no error, nothing written
    assert not HealthSample.objects.exists()


@pytest.mark.django_db
def test_check_now_makes_the_round_due_at_the_next_beat_tick(
    web_client: Callable[[str], Any],
) -> None:
    from nodes.health import tasks

    cluster = make_cluster("now")
    Cluster.objects.filter(pk=cluster.pk).update(health_next_at=timezone.now() + timedelta(hours=1))
    client = web_client("operator")
    assert 'id="check-now"' in client.get(f"/clusters/{cluster.pk}/health/").content.decode()
    response = client.post(f"/clusters/{cluster.pk}/health/check/")
    assert response.status_code == 302 and response["Location"] == f"/clusters/{cluster.pk}/health/"
    cluster.refresh_from_db()
    assert cluster.health_next_at is None
    from clusterpanel.models import AuditEvent

    (event,) = AuditEvent.objects.filter(action="health.check_now")
    assert event.actor_name == "operator" and event.via == "web" and event.cluster_name == "now"
    # The beat's claim takes it once.
    assert tasks.claim(cluster.pk, cluster.health_interval_seconds, timezone.now())
    assert not tasks.claim(cluster.pk, cluster.health_interval_seconds, timezone.now())


@pytest.mark.django_db
def test_the_api_answers_current_health_and_paginated_transitions(
    api_client: Callable[[str | None], Any],
) -> None:
    cluster = _cluster_with_checks("api", {"ssh": "unhealthy"}, rounds=2)
    other = _cluster_with_checks("other", {})
    client = api_client("viewer")

    current = client.get(f"/api/v1/clusters/{cluster.pk}/health/")
    assert current.status_code == 200
    rows = current.json()
    assert len(rows) == 5
    ssh = next(r for r in rows if r["component"] == services.SSH)
    node = cluster.nodes.get()
    assert ssh | {"checked_at": None, "changed_at": None} == {
        "component": "ssh",
        "node": node.pk,
        "node_name": node.name,
        "target": "10.0.0.11:22",
        "status": "unhealthy",
        "latency_ms": 40.0,
        "message": "ssh is unhealthy",
        "checked_at": None,
        "changed_at": None,
    }
    livez = next(r for r in rows if r["component"] == services.APISERVER_LIVEZ)
    assert livez["node"] is None and livez["node_name"] is None

    events = client.get("/api/v1/health-events/", {"cluster": cluster.pk})
    assert events.status_code == 200
    body = events.json()
    assert body["count"] == 6 and {e["cluster"] for e in body["results"]} == {cluster.pk}
    newest = body["results"][0]
    assert (newest["component"], newest["from_status"], newest["to_status"]) == (
        "ssh",
        "healthy",
        "unhealthy",
    )
    everything = client.get("/api/v1/health-events/").json()
    assert everything["count"] == 11 and other.pk in {e["cluster"] for e in everything["results"]}

    for bad in ("x", "0", "-1", "1.5"):
        refused = client.get("/api/v1/health-events/", {"cluster": bad})
        assert refused.status_code == 400
        assert "cluster" in refused.json()["errors"]
    assert api_client("outsider").get(f"/api/v1/clusters/{cluster.pk}/health/").status_code == 403
    assert api_client(None).get("/api/v1/health-events/").status_code == 401


@pytest.mark.django_db
def test_the_health_tab_offers_the_health_role_to_operators_of_kubeadm_clusters(
    web_client: Callable[[str], Any],
) -> None:
    from nodes.models import ClusterFlavor

    kubeadm = make_cluster("made-elsewhere")
    binary = make_cluster("binaries", flavor=ClusterFlavor.BINARY)
    link = f'href="/clusters/{kubeadm.pk}/jobs/new/?kind=health-access" id="grant-health-role"'
    operator = web_client("operator").get(f"/clusters/{kubeadm.pk}/health/").content.decode()
    assert link in operator
    viewer = web_client("viewer").get(f"/clusters/{kubeadm.pk}/health/").content.decode()
    assert "grant-health-role" not in viewer and "an operator can grant the health role" in viewer
    other = web_client("operator").get(f"/clusters/{binary.pk}/health/").content.decode()
    assert "health-access" not in other
