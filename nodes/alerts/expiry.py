"""Expiry-band alerts: the panel's ledger and what the certificate scan read on the nodes, sent
as one digest per cluster and run.

Each certificate is announced once per band it enters (``expiry:<kind>:<id>:band:<days>``,
kept as an ``ExpiryNotice``), and once more when it has expired; one first seen deep inside
several bands is announced for the nearest band only. A run gathers, per cluster, every
certificate that entered a new band and sends ONE alert listing them all (an e-mail per cluster
and run, not one per certificate). Running it again (a second beat tick, a restart, two at
once) announces nothing twice: the notices are claimed by a unique key before the digest goes.

CAs, in the ledger or found on a node, have their own, earlier bands
(``CLUSTERPANEL_CA_EXPIRY_BANDS``): a rollout cannot renew a CA. A scanned certificate that is
the active ledger row (same fingerprint) is announced as that row; one the ledger does not hold
as active (a node still serving a superseded certificate, kubelet's own rotated client
certificate, a file the panel did not issue) is announced as what the node holds. Queries do
not grow with the certificates.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from nodes.alerts.models import AlertSettings, ExpiryNotice
from nodes.alerts.services import channels, notify
from nodes.health import drift
from nodes.health.findings import ScannedCertificate
from nodes.models import Cluster
from pki.models import Certificate, CertificateAuthority, CertificateStatus

EXPIRED = "expired"


def parse_bands(text: str) -> list[int]:
    """``"30,14,7,1"`` as days, largest first; ValueError on anything but positive numbers."""
    bands = sorted({int(item) for item in text.split(",") if item.strip()}, reverse=True)
    if not bands or bands[-1] <= 0:
        raise ValueError(f"expiry bands must be positive day counts: {text!r}")
    return bands


def band_of(not_after: datetime, now: datetime, bands: list[int]) -> str | None:
    """The nearest band ``not_after`` is inside at ``now`` (``"expired"`` past it), or None."""
    left = not_after - now
    if left <= timedelta(0):
        return EXPIRED
    inside = [band for band in bands if left <= timedelta(days=band)]
    return str(min(inside)) if inside else None


@dataclass(frozen=True)
class Item:
    """One certificate in a band: the notice's key and the digest's entry."""

    cluster_id: int
    key: str
    what: str
    band: str
    not_after: datetime
    entry: dict[str, Any]


def _entry(kind: str, ident: Any, what: str, cert: Any, band: str, now: datetime) -> dict[str, Any]:
    return {
        "id": ident,
        "type": kind,
        "what": what,
        "name": getattr(cert, "name", "") or getattr(cert, "path", ""),
        "node": getattr(cert, "node_name", ""),
        "common_name": getattr(cert, "common_name", "") or getattr(cert, "subject", ""),
        "serial": getattr(cert, "serial", ""),
        "not_after": cert.not_after.isoformat(),
        "band": band,
        "days_left": round((cert.not_after - now).total_seconds() / 86400, 2),
    }


def _scanned_is_ca(row: ScannedCertificate) -> bool:
    path = row.path.split("#", 1)[0]
    if path in drift.CA_FILES or path.endswith(":certificate-authority-data"):
        return True
    # kubelet's serving certificate is self-signed without being a CA.
    return row.subject == row.issuer and not path.startswith(drift.KUBELET_PKI + "/")


def items(now: datetime) -> list[Item]:
    """Every certificate inside a band at ``now``: ledger leaves and CAs, and scanned ones the
    ledger does not hold as active."""
    leaf_bands = parse_bands(settings.CLUSTERPANEL_EXPIRY_BANDS)
    ca_bands = parse_bands(settings.CLUSTERPANEL_CA_EXPIRY_BANDS)
    widest = max(leaf_bands[0], ca_bands[0])
    found: list[Item] = []
    ledger: Iterable[tuple[str, Any, list[int]]] = [
        *(
            ("cert", c, leaf_bands)
            for c in Certificate.objects.filter(
                status=CertificateStatus.ACTIVE, not_after__lte=now + timedelta(days=leaf_bands[0])
            )
        ),
        *(
            ("ca", c, ca_bands)
            for c in CertificateAuthority.objects.filter(
                status=CertificateStatus.ACTIVE, not_after__lte=now + timedelta(days=ca_bands[0])
            )
        ),
    ]
    for kind, cert, bands in ledger:
        band = band_of(cert.not_after, now, bands)
        if band is None:
            continue
        if kind == "ca":
            what = f"CA {cert.name}"
        else:
            what = f"{cert.name} of {cert.node_name}" if cert.node_name else str(cert.name)
        key = f"expiry:{kind}:{cert.pk}:band:{band}"
        entry = _entry(kind, cert.pk, what, cert, band, now)
        found.append(Item(cert.cluster_id, key, what, band, cert.not_after, entry))

    scanned = list(
        ScannedCertificate.objects.filter(not_after__lte=now + timedelta(days=widest))
        .select_related("node")
        .order_by("not_after", "pk")
    )
    clusters = {row.cluster_id for row in scanned}
    active: set[tuple[int, str]] = set()
    for model in (Certificate, CertificateAuthority):
        active |= set(
            model.objects.filter(
                cluster_id__in=clusters, status=CertificateStatus.ACTIVE
            ).values_list("cluster_id", "fingerprint_sha256")
        )
    for row in scanned:
        if (row.cluster_id, row.fingerprint) in active:
            continue  # the ledger's own row says it
        is_ca = _scanned_is_ca(row)
        band = band_of(row.not_after, now, ca_bands if is_ca else leaf_bands)
        if band is None:
            continue
        what = f"{'CA ' if is_ca else ''}{row.path} on {row.node.name}"
        digest = row.fingerprint.replace(":", "").lower()[:64]
        key = f"expiry:scanned:{row.node_id}:{digest}:band:{band}"
        entry = _entry("scanned-ca" if is_ca else "scanned", row.pk, what, row, band, now)
        entry["node"] = row.node.name
        found.append(Item(row.cluster_id, key, what, band, row.not_after, entry))
    return found


def _line(item: Item) -> str:
    if item.band == EXPIRED:
        return f"{item.what} expired on {item.not_after:%Y-%m-%d %H:%M} UTC"
    return f"{item.what} expires within {item.band} days ({item.not_after:%Y-%m-%d %H:%M} UTC)"


def _claim(cluster: Cluster, batch: list[Item], digest_key: str) -> list[Item]:
    """The items whose notice this run writes first (the others were announced before)."""
    known = set(
        ExpiryNotice.objects.filter(cluster=cluster, key__in=[i.key for i in batch]).values_list(
            "key", flat=True
        )
    )
    claimed = []
    for item in batch:
        if item.key in known:
            continue
        try:
            with transaction.atomic():
                ExpiryNotice.objects.create(cluster=cluster, key=item.key, digest_key=digest_key)
        except IntegrityError:
            continue  # another run announced it a moment ago
        claimed.append(item)
    return claimed


def alert_expiry_bands(now: datetime | None = None) -> int:
    """Announce every band newly entered, one digest per cluster; how many certificates were
    announced."""
    now = now or timezone.now()
    by_cluster: dict[int, list[Item]] = defaultdict(list)
    for item in items(now):
        by_cluster[item.cluster_id].append(item)
    if not by_cluster:
        return 0
    configs = {
        c.cluster_id: c
        for c in AlertSettings.objects.filter(cluster_id__in=by_cluster).select_related("cluster")
    }
    count = 0
    for cluster_id, batch in sorted(by_cluster.items()):
        config = configs.get(cluster_id)
        if config is None or not channels(config):
            continue  # announced once the cluster has somewhere to send alerts
        cluster: Cluster = config.cluster
        digest_key = f"expiry:digest:{uuid.uuid4().hex}"
        with transaction.atomic():
            claimed = _claim(cluster, sorted(batch, key=lambda i: (i.not_after, i.key)), digest_key)
            if not claimed:
                continue
            lines = [_line(item) for item in claimed]
            if len(claimed) == 1:
                subject = lines[0]
            else:
                subject = f"{len(claimed)} certificates entered an expiry band; soonest: {lines[0]}"
            payload = {
                "kind": "certificate_expiry",
                "lines": lines,
                "certificates": [item.entry for item in claimed],
            }
            notify(cluster, digest_key, subject, payload, config=config)
        count += len(claimed)
    return count
