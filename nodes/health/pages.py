"""What the health pages show, read with a fixed number of queries however many clusters,
nodes and checks there are: the dashboard grid (one aggregate query) and a cluster's Health
tab (current rows, the last 24 h of samples, recent transitions)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Case, IntegerField, Max, Value, When

from nodes.health import node_checks, services
from nodes.health.sparkline import Sparkline, downsample, sparkline
from nodes.models import Cluster, ComponentHealth, HealthEvent, HealthSample, HealthStatus

# The grid's columns: a title and the components whose rows it sums up.
COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("apiserver livez", (services.APISERVER_LIVEZ,)),
    ("apiserver readyz", (services.APISERVER_READYZ,)),
    ("etcd", (services.ETCD, services.ETCD_ALARMS, services.ETCD_MEMBERS)),
    ("controller-manager", (node_checks.CONTROLLER_MANAGER,)),
    ("scheduler", (node_checks.SCHEDULER,)),
    ("kubelet", (node_checks.KUBELET,)),
    ("kube-proxy", (node_checks.KUBE_PROXY,)),
    ("runtime", (node_checks.RUNTIME,)),
    ("ssh", (services.SSH,)),
)

# Worse is larger: a cell shows the worst status of its rows.
SEVERITY = {
    HealthStatus.HEALTHY: 0,
    HealthStatus.UNKNOWN: 1,
    HealthStatus.DEGRADED: 2,
    HealthStatus.UNHEALTHY: 3,
}
_BY_SEVERITY = {rank: status for status, rank in SEVERITY.items()}

HISTORY = timedelta(hours=24)
SPARK_BUCKET = timedelta(minutes=10)
RECENT_EVENTS = 50


@dataclass(frozen=True)
class GridRow:
    cluster: Cluster
    cells: list[str | None]  # per column: the worst status, None when nothing was checked


def _column_of() -> dict[str, int]:
    return {c: i for i, (_, components) in enumerate(COLUMNS) for c in components}


def grid(clusters: Iterable[Cluster]) -> list[GridRow]:
    """One row per cluster, one cell per column: one query for all clusters."""
    clusters = list(clusters)
    rank = Case(
        *(When(status=status, then=Value(n)) for status, n in SEVERITY.items()),
        default=Value(SEVERITY[HealthStatus.UNKNOWN]),
        output_field=IntegerField(),
    )
    worst = (
        ComponentHealth.objects.filter(cluster__in=[c.pk for c in clusters])
        .values("cluster_id", "component")
        .annotate(worst=Max(rank))
        .order_by()
    )
    column_of = _column_of()
    cells: dict[int, list[int | None]] = {c.pk: [None] * len(COLUMNS) for c in clusters}
    for row in worst:
        column = column_of.get(row["component"])
        if column is None:
            continue
        current = cells[row["cluster_id"]][column]
        if current is None or row["worst"] > current:
            cells[row["cluster_id"]][column] = row["worst"]
    return [
        GridRow(c, [None if v is None else str(_BY_SEVERITY[v]) for v in cells[c.pk]])
        for c in clusters
    ]


@dataclass(frozen=True)
class CheckRow:
    health: ComponentHealth
    spark: Sparkline | None


def checks(cluster: Cluster, now: datetime) -> list[CheckRow]:
    """The cluster's current results, each with its latency sparkline: two queries."""
    rows = list(
        ComponentHealth.objects.filter(cluster=cluster)
        .select_related("node")
        .order_by("component", "node__name", "target")
    )
    start = now - HISTORY
    series: dict[tuple[str, int | None, str], list[tuple[datetime, float]]] = defaultdict(list)
    samples = (
        HealthSample.objects.filter(cluster=cluster, checked_at__gte=start)
        .order_by("checked_at")
        .values_list("component", "node_id", "target", "checked_at", "latency_ms")
    )
    for component, node_id, target, at, latency in samples.iterator(chunk_size=5000):
        series[(component, node_id, target)].append((at, latency))
    out = []
    for h in rows:
        points = downsample(series.get((h.component, h.node_id, h.target), []), start, SPARK_BUCKET)
        out.append(CheckRow(h, sparkline(points, start, now)))
    return out


def events(cluster: Cluster) -> list[HealthEvent]:
    return list(HealthEvent.objects.filter(cluster=cluster).select_related("node")[:RECENT_EVENTS])
