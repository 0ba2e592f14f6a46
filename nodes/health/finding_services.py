"""What the Findings page, the fleet expiry table and their API read and write: the open
findings filtered, a silence until an end time, and every certificate on every node soonest
expiry first (the scanned ones, and the ledger's for nodes no scan has read yet)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.health import drift
from nodes.health.findings import Finding, ScannedCertificate, Severity
from nodes.models import Cluster, Node
from pki.domain import binary_import

# Every kind a finding can have: the certificate scan's and the binary import's.
FINDING_KINDS = (*drift.KINDS, *binary_import.KINDS)

# The longest silence: long enough for a planned change, short enough not to be forgotten.
MAX_SILENCE = dt.timedelta(days=90)
# The widest ``expiring_within_days`` asked of the fleet table (ten years).
MAX_WITHIN_DAYS = 3650

SCANNED, LEDGER = "scanned", "ledger"


@dataclass(frozen=True)
class FindingFilters:
    cluster: int | None = None
    severity: str = ""
    kind: str = ""
    show_silenced: bool = False


def parse_finding_filters(params: Mapping[str, str]) -> tuple[FindingFilters, dict[str, str]]:
    """The filters ``params`` ask for, and the errors (parameter → reason) of those that are
    no valid value (left out of the filters)."""
    errors: dict[str, str] = {}
    cluster: int | None = None
    text = params.get("cluster", "") or ""
    if text:
        if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
            cluster = int(text)
        else:
            errors["cluster"] = "must be a cluster id (a whole number)"
    severity = params.get("severity", "") or ""
    if severity and severity not in Severity.values:
        errors["severity"] = f"must be one of {', '.join(Severity.values)}"
        severity = ""
    kind = params.get("kind", "") or ""
    if kind and kind not in FINDING_KINDS:
        errors["kind"] = f"must be one of {', '.join(FINDING_KINDS)}"
        kind = ""
    show = (params.get("show_silenced", "") or "") in ("1", "on", "true")
    return FindingFilters(cluster, severity, kind, show), errors


def open_findings(filters: FindingFilters) -> QuerySet[Finding]:
    """Open findings, worst first, then the most recently seen."""
    queryset = Finding.objects.open().select_related("cluster", "node")
    if not filters.show_silenced:
        queryset = queryset.unsilenced()
    if filters.cluster is not None:
        queryset = queryset.filter(cluster_id=filters.cluster)
    if filters.severity:
        queryset = queryset.filter(severity=filters.severity)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    rank = models.Case(
        models.When(severity=Severity.CRITICAL, then=Value(0)),
        models.When(severity=Severity.WARNING, then=Value(1)),
        default=Value(2),
        output_field=models.IntegerField(),
    )
    return queryset.annotate(rank=rank).order_by("rank", "-last_seen", "pk")


def fix_url(finding: Finding) -> str:
    """The launch page of the job that fixes ``finding`` (it previews first), or ""."""
    if not finding.action_kind:
        return ""
    url = f"/clusters/{finding.cluster_id}/jobs/new/?kind={finding.action_kind}"
    if finding.node_id is not None:
        url += f"&nodes={finding.node_id}"
    return url


def check_silence_until(until: dt.datetime | None, now: dt.datetime | None = None) -> dt.datetime:
    """``until`` when it is a time in the future at most ``MAX_SILENCE`` away; else an
    ``InputError`` naming ``until``."""
    now = now or timezone.now()
    if until is None:
        raise InputError("give the date and time the silence ends", "until")
    if timezone.is_naive(until):
        until = timezone.make_aware(until, dt.UTC)
    if until <= now:
        raise InputError("must be a date and time in the future", "until")
    if until > now + MAX_SILENCE:
        raise InputError(f"must be at most {MAX_SILENCE.days} days from now", "until")
    return until


def silence_finding(actor: Actor, finding: Finding, until: dt.datetime | None) -> Finding:
    """Hide ``finding`` from the open list until ``until`` (operators and admins), audited."""
    require_permission(actor.user, "silence_findings", "silencing a finding is an operator's")
    until = check_silence_until(until)
    with transaction.atomic():
        locked = Finding.objects.select_for_update().get(pk=finding.pk)
        locked.silenced_until = until
        locked.save(update_fields=["silenced_until"])
        audit.record(
            "finding.silence",
            actor,
            obj=locked,
            cluster=finding.cluster,
            details={"finding": locked.pk, "until": until.isoformat()},
        )
    return locked


# --- the fleet expiry table ---------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    source: str  # SCANNED or LEDGER
    cluster_id: int
    cluster_name: str
    node_id: int | None
    node_name: str
    path: str
    subject: str
    not_after: dt.datetime
    days_left: int
    band: str  # "expired", "critical", "warning" or "ok"

    @property
    def band_text(self) -> str:
        if self.band == "expired":
            return "expired"
        if self.band == "ok":
            return "ok"
        return f"{self.band}: {self.days_left} days"


def fleet_rows(within_days: int | None) -> QuerySet[Any, Any]:
    """Every scanned certificate and every active ledger certificate of a node no scan has
    read, soonest NotAfter first, as one query of plain values (a union), to page."""
    from pki.models import Certificate

    scanned = ScannedCertificate.objects.values_list(
        "cluster_id", "node_id", "path", "subject", "not_after", "pk"
    ).annotate(source=Value(SCANNED, output_field=models.CharField()))
    node_scanned = ScannedCertificate.objects.filter(node_id=OuterRef("node_id"))
    ledger = (
        Certificate.objects.active()
        .filter(node__isnull=False)
        .filter(~Exists(node_scanned))
        .values_list("cluster_id", "node_id", "name", "common_name", "not_after", "pk")
        .annotate(source=Value(LEDGER, output_field=models.CharField()))
    )
    if within_days is not None:
        limit = timezone.now() + dt.timedelta(days=within_days)
        scanned = scanned.filter(not_after__lte=limit)
        ledger = ledger.filter(not_after__lte=limit)
    scanned = scanned.order_by()
    ledger = ledger.order_by()
    return scanned.union(ledger, all=True).order_by("not_after", "source", "pk")


def band_of(not_after: dt.datetime, now: dt.datetime, bands: Sequence[int]) -> tuple[int, str]:
    remaining = not_after - now
    days = remaining.days if remaining > dt.timedelta(0) else 0
    spec = drift.expiry_finding("", "", not_after, now, bands)
    if remaining <= dt.timedelta(0):
        return days, "expired"
    if spec is None:
        return days, "ok"
    return days, spec.severity


def fleet_page(values: Sequence[Any]) -> list[FleetRow]:
    """The rows of one page, with their cluster and node names (two queries per page)."""
    from nodes.health.scan_store import expiry_bands

    now = timezone.now()
    bands = expiry_bands()
    clusters = dict(Cluster.objects.filter(pk__in={v[0] for v in values}).values_list("pk", "name"))
    nodes = dict(
        Node.objects.filter(pk__in={v[1] for v in values if v[1] is not None}).values_list(
            "pk", "name"
        )
    )
    rows = []
    for cluster_id, node_id, path, subject, not_after, _pk, source in values:
        assert isinstance(not_after, dt.datetime)
        days, band = band_of(not_after, now, bands)
        rows.append(
            FleetRow(
                source=str(source),
                cluster_id=int(str(cluster_id)),
                cluster_name=clusters.get(cluster_id, ""),
                node_id=int(str(node_id)) if node_id is not None else None,
                node_name=nodes.get(node_id, ""),
                path=str(path),
                subject=str(subject),
                not_after=not_after,
                days_left=days,
                band=band,
            )
        )
    return rows


def parse_within_days(text: str | None) -> tuple[int | None, str]:
    """``expiring_within_days`` as a whole number of days, and the error when it is none."""
    if text is None or text == "":
        return None, ""
    if text.isascii() and text.isdigit() and 0 <= int(text) <= MAX_WITHIN_DAYS:
        return int(text), ""
    return None, f"must be a whole number from 0 to {MAX_WITHIN_DAYS}"


__all__ = [
    "FindingFilters",
    "FleetRow",
    "check_silence_until",
    "fix_url",
    "fleet_page",
    "fleet_rows",
    "open_findings",
    "parse_finding_filters",
    "parse_within_days",
    "silence_finding",
]
