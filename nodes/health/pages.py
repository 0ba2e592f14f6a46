"""What the health pages show, read with a fixed number of queries however many clusters,
nodes and checks there are: the dashboard grid (one aggregate query) and a cluster's Health
tab (current rows, the last 24 h of samples reduced in the database to one point per check and
quarter hour, recent transitions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    FloatField,
    Func,
    IntegerField,
    Max,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils.html import format_html
from django.utils.safestring import SafeString

from nodes.health import node_checks, services
from nodes.health.sparkline import Sparkline, sparkline
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
# One sparkline point per check and bucket: the bucket's highest latency (the spikes are what
# matters), at the time of its last sample. The bucket the rounds write their samples in: the
# query still groups by it, for the history written before samples were merged per bucket.
SPARK_BUCKET = services.SAMPLE_BUCKET
# The node columns the Health tab does not show: JSON facts and encrypted credentials.
_NODE_DETAIL = tuple(
    f"node__{name}"
    for name in ("facts", "labels", "taints", "ssh_private_key", "ssh_key_passphrase",
                 "ssh_password", "sudo_password", "host_key", "pending_host_key")
)  # fmt: skip


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


class _EpochSeconds(Func):
    """A timestamp as seconds since the epoch (a double: microseconds exact for the next
    centuries). Far cheaper to read back than the timestamp: with Django's time-zone loader
    psycopg parses each timestamp in Python, ~3 µs apiece, 30 ms for a cluster's day of
    buckets."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)::double precision"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        seconds = _sqlite_whole_seconds(sql)
        return f"(CAST({seconds} AS REAL) + CAST(substr({sql}, 20) AS REAL))", [*params, *params]


def _sqlite_whole_seconds(sql: str) -> str:
    """Seconds since the epoch of a time Django keeps as 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC)
    text, the fraction cut off first: SQLite parses it to the millisecond and would round
    59.9996 up to the next second."""
    return f"strftime('%%s', substr({sql}, 1, 19))"


class _EpochBucket(Func):
    """The number of the ``seconds``-long bucket a timestamp falls in, counted from the epoch.
    On PostgreSQL, grouping a day of samples by it takes ~40% less time than by the hour
    (``TruncHour``) and the quarter of its minute: those convert every sample's time to UTC twice
    (135 → 75 ms of a 195 ms aggregate of 136,800 samples)."""

    output_field = IntegerField()
    template = "FLOOR(date_part('epoch', %(expressions)s) / %(seconds)d)"  # and ``seconds=``

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        seconds = int(self.extra["seconds"])
        return f"(CAST({_sqlite_whole_seconds(sql)} AS INTEGER) / {seconds:d})", params


def _bucket_seconds() -> int:
    seconds = int(SPARK_BUCKET.total_seconds())
    assert seconds > 0 and 3600 % seconds == 0, "a bucket divides the hour"
    return seconds


@dataclass(frozen=True)
class CheckRow:
    health: ComponentHealth
    spark: Sparkline | None
    svg: SafeString | None  # the sparkline drawn: SVG attributes only, no style


def _svg(spark: Sparkline) -> SafeString:
    """The sparkline's ``<svg>``, built here rather than in the template: a template variable
    costs ~20 µs, and the drawing's ten of them on each of ~100 rows were a third of the tab's
    rendering."""
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}"><title>{}</title><polyline fill="none" stroke="#2456c7" '
        'stroke-width="1.5" points="{}"/><circle cx="{}" cy="{}" r="2" fill="#2456c7"/></svg>',
        spark.width,
        spark.height,
        spark.width,
        spark.height,
        spark.label,
        spark.label,
        spark.points,
        spark.last_x,
        spark.last_y,
    )


def spark_buckets(
    cluster: Cluster, start: datetime
) -> dict[tuple[str, int | None, str], tuple[list[tuple[datetime, float]], int]]:
    """Per check since ``start``: its buckets' (last time, highest latency), oldest first, and
    the number of rounds they sum up. One aggregate query, at most 96 points per check: the
    rounds merge their results into one sample per check and bucket (``services.record``); the
    grouping reduces what was written before they did."""
    grouped = (
        HealthSample.objects.filter(cluster=cluster, checked_at__gte=start)
        .annotate(bucket=_EpochBucket("checked_at", seconds=_bucket_seconds()))
        .values("component", "node_id", "target", "bucket")
        .annotate(
            at=_EpochSeconds(Max("checked_at")), worst=Max("latency_ms"), samples=Sum("samples")
        )
    )
    # Grouped by bucket, but the bucket is not read back (a bucket's hour, converted for each of
    # the ~9,000 rows of a 95-check cluster's day, was most of the page's time). The buckets of a
    # check do not overlap, so their last sample's time orders them as well.
    rows = grouped.values_list("component", "node_id", "target", "at", "worst", "samples")
    sql, params = rows.order_by("at").query.sql_with_params()
    # Read from the cursor: the values are plain numbers and strings already, and Django's
    # conversion of each row would cost a further ~10 ms.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    points_of: dict[tuple[str, int | None, str], list[tuple[datetime, float]]] = {}
    totals: dict[tuple[str, int | None, str], int] = {}
    for component, node_id, target, at, worst, samples in fetched:
        key = (component, node_id, target)
        points = points_of.get(key)
        if points is None:
            points = points_of[key] = []
            totals[key] = 0
        points.append((datetime.fromtimestamp(at, UTC), float(worst)))
        totals[key] += samples
    return {key: (points, totals[key]) for key, points in points_of.items()}


def checks(cluster: Cluster, now: datetime) -> list[CheckRow]:
    """The cluster's current results, each with its latency sparkline: two queries."""
    rows = list(
        ComponentHealth.objects.filter(cluster=cluster)
        .select_related("node")
        # Of the node, the tab shows the name (and links to it): not its facts, nor its stored
        # credentials, each decrypted for each of its ~5-9 rows.
        .defer(*_NODE_DETAIL)
        .order_by("component", "node__name", "target")
    )
    start = now - HISTORY
    series = spark_buckets(cluster, start)
    out = []
    for h in rows:
        points, samples = series.get((h.component, h.node_id, h.target), ([], 0))
        spark = sparkline(points, start, now, samples_count=samples)
        out.append(CheckRow(h, spark, None if spark is None else _svg(spark)))
    return out


def events(cluster: Cluster) -> QuerySet[HealthEvent]:
    """The cluster's transitions, newest first (the tab pages and sorts them)."""
    return HealthEvent.objects.filter(cluster=cluster).select_related("node").defer(*_NODE_DETAIL)
