"""Prometheus ``/metrics``: read from the database on each scrape, never from process state.

Certificate series are named as x509-certificate-exporter names them (``x509_cert_not_after``,
``x509_cert_not_before``, ``x509_cert_expired``, with ``filename``/``filepath``/``subject_CN``/
``issuer_CN``/``serial_number`` labels), plus ``cluster`` and ``node``, so its dashboards and
alert rules work on the panel's ledger. Jobs: counts by kind and status, and a histogram of the
durations of finished jobs. A scrape costs the same few queries however many rows there are.

Component health plugs in through ``register_health_source``: a callable returning
``HealthRow``s, turned into gauges and a latency histogram by ``HealthCollector``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from rest_framework import exceptions

from clusterpanel.api.authentication import ApiTokenAuthentication
from clusterpanel.jobs.models import Job
from clusterpanel.security.roles import can
from pki.models import Certificate, CertificateAuthority, CertificateKind, CertificateStatus

CERT_LABELS = [
    "cluster",
    "node",
    "filename",
    "filepath",
    "subject_CN",
    "issuer_CN",
    "serial_number",
]
# Seconds; jobs run from seconds (facts) to hours (upgrades).
JOB_DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

KUBERNETES_DIR = "/etc/kubernetes"


def cert_path(name: str, kind: str = CertificateKind.KUBEADM) -> str:
    """Where kubeadm keeps the file ``name`` on a node; "" for certificates outside the tree."""
    if kind != CertificateKind.KUBEADM:
        return ""
    if name.endswith(".conf"):
        return f"{KUBERNETES_DIR}/{name}"
    return f"{KUBERNETES_DIR}/pki/{name}.crt"


def _epoch(value: datetime) -> float:
    return value.timestamp()


class PanelCollector(Collector):
    """Certificates of the ledger and jobs, from the database at each ``collect``."""

    def collect(self) -> Iterator[Metric]:
        yield from self._certificates()
        yield from self._jobs()

    def _certificates(self) -> Iterator[Metric]:
        now = timezone.now()
        not_after = GaugeMetricFamily(
            "x509_cert_not_after",
            "NotAfter of the certificate, seconds since epoch",
            labels=CERT_LABELS,
        )
        not_before = GaugeMetricFamily(
            "x509_cert_not_before",
            "NotBefore of the certificate, seconds since epoch",
            labels=CERT_LABELS,
        )
        expired = GaugeMetricFamily(
            "x509_cert_expired", "1 if the certificate has expired, else 0", labels=CERT_LABELS
        )
        leaves = (
            Certificate.objects.filter(status=CertificateStatus.ACTIVE)
            .values_list(
                "cluster__name",
                "node_name",
                "name",
                "kind",
                "common_name",
                "issuer",
                "serial",
                "not_before",
                "not_after",
            )
            .order_by("cluster__name", "node_name", "name")
        )
        cas = (
            CertificateAuthority.objects.filter(status=CertificateStatus.ACTIVE)
            .values_list(
                "cluster__name", "name", "common_name", "serial", "not_before", "not_after"
            )
            .order_by("cluster__name", "name")
        )
        rows: list[tuple[list[str], datetime, datetime]] = []
        for cluster, node, name, kind, cn, issuer, serial, start, end in leaves:
            path = cert_path(name, kind)
            filename = path.rsplit("/", 1)[-1] if path else name
            rows.append(([cluster, node, filename, path, cn, issuer, serial], start, end))
        for cluster, name, cn, serial, start, end in cas:
            # A CA's file is on every control-plane node: the series is the ledger's, node "".
            path = cert_path(name)
            rows.append(([cluster, "", path.rsplit("/", 1)[-1], path, cn, cn, serial], start, end))
        for labels, start, end in rows:
            not_after.add_metric(labels, _epoch(end))
            not_before.add_metric(labels, _epoch(start))
            expired.add_metric(labels, 1.0 if end <= now else 0.0)
        yield not_after
        yield not_before
        yield expired

    def _jobs(self) -> Iterator[Metric]:
        counts = GaugeMetricFamily(
            "clusterpanel_jobs", "Jobs by kind and status", labels=["kind", "status"]
        )
        for kind, status, number in (
            Job.objects.order_by()
            .values_list("kind", "status")
            .annotate(n=Count("pk"))
            .values_list("kind", "status", "n")
        ):
            counts.add_metric([kind, status], float(number))
        yield counts

        durations = HistogramMetricFamily(
            "clusterpanel_job_duration_seconds",
            "Durations of finished jobs, by kind and status",
            labels=["kind", "status"],
        )
        finished = Q(started_at__isnull=False, finished_at__isnull=False)
        buckets: dict[str, Any] = {
            f"le{i}": Count(
                "pk", filter=Q(finished_at__lte=F("started_at") + timedelta(seconds=bound))
            )
            for i, bound in enumerate(JOB_DURATION_BUCKETS)
        }
        elapsed = ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        )
        for row in (
            Job.objects.filter(finished)
            .order_by()
            .values("kind", "status")
            .annotate(n=Count("pk"), total=Sum(elapsed), **buckets)
        ):
            series = [
                (_bound(bound), float(row[f"le{i}"]))
                for i, bound in enumerate(JOB_DURATION_BUCKETS)
            ]
            series.append(("+Inf", float(row["n"])))
            total: timedelta | None = row["total"]
            durations.add_metric(
                [row["kind"], row["status"]], series, total.total_seconds() if total else 0.0
            )
        yield durations


def _bound(value: float) -> str:
    return repr(float(value))


@dataclass(frozen=True)
class HealthRow:
    """One check's latest result: what the health checks hand to ``HealthCollector``."""

    cluster: str
    node: str
    component: str
    status: str  # healthy / degraded / unhealthy / unknown
    latency_seconds: float | None = None


HEALTH_STATUSES = ("healthy", "degraded", "unhealthy", "unknown")


class HealthCollector(Collector):
    """Component health gauges and check latency histograms from an iterable of ``HealthRow``."""

    def __init__(self, rows: Callable[[], Iterable[HealthRow]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        labels = ["cluster", "node", "component"]
        up = GaugeMetricFamily(
            "clusterpanel_component_healthy",
            "1 if the component's last check was healthy",
            labels=labels,
        )
        state = GaugeMetricFamily(
            "clusterpanel_component_status",
            "The component's last status, one series per status set to 1 for the current one",
            labels=[*labels, "status"],
        )
        latencies: dict[str, list[float]] = {}
        for row in self.rows():
            key = [row.cluster, row.node, row.component]
            up.add_metric(key, 1.0 if row.status == "healthy" else 0.0)
            for status in HEALTH_STATUSES:
                state.add_metric([*key, status], 1.0 if row.status == status else 0.0)
            if row.latency_seconds is not None:
                latencies.setdefault(row.component, []).append(row.latency_seconds)
        yield up
        yield state
        latency = HistogramMetricFamily(
            "clusterpanel_check_latency_seconds",
            "Latency of the last check of each component",
            labels=["component"],
        )
        for component, values in sorted(latencies.items()):
            series = [
                (_bound(bound), float(sum(1 for v in values if v <= bound)))
                for bound in LATENCY_BUCKETS
            ]
            series.append(("+Inf", float(len(values))))
            latency.add_metric([component], series, sum(values))
        yield latency


_HEALTH_SOURCES: list[Callable[[], Iterable[HealthRow]]] = []


def register_health_source(source: Callable[[], Iterable[HealthRow]]) -> None:
    """Add the component health rows of ``source`` to every scrape (call once, at app start)."""
    if source not in _HEALTH_SOURCES:
        _HEALTH_SOURCES.append(source)


def registry() -> CollectorRegistry:
    """A fresh registry per scrape: the panel's collectors only, no process or platform state."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(PanelCollector())
    for source in _HEALTH_SOURCES:
        scrape.register(HealthCollector(source))
    return scrape


def _unauthorized(message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="clusterpanel metrics"'
    return response


def _authorize(request: HttpRequest) -> HttpResponse | None:
    """None when the request may scrape, else the 401 or 403 to answer."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, key = header.partition(" ")
    expected = settings.CLUSTERPANEL_METRICS_TOKEN
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(key.strip(), expected):
        return None
    user: Any = None
    if header:
        try:
            found = ApiTokenAuthentication().authenticate(request)  # type: ignore[arg-type]
        except exceptions.AuthenticationFailed as error:
            return _unauthorized(str(error.detail))
        if found is None:
            return _unauthorized("Authorization must be 'Bearer <token>'.")
        user = found[0]
    elif request.user.is_authenticated:
        user = request.user
    else:
        return _unauthorized("A bearer token is required.")
    if not can(user, "view"):
        return HttpResponse(
            "The token's user may not read metrics.\n", status=403, content_type="text/plain"
        )
    return None


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refused = _authorize(request)
    if refused is not None:
        return refused
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
