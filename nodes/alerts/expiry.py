"""Expiry-band alerts from the panel's ledger.

A certificate alerts once per band it crosses (``expiry:cert:<id>:band:<days>``), and once more
when it has expired; a certificate first seen deep inside several bands alerts for the nearest
band only. CAs have their own, earlier bands. Running it again (a second beat tick, a restart)
sends nothing new: the key is the once-only guard. Queries do not grow with the certificates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from nodes.alerts.models import AlertDelivery, AlertSettings
from nodes.alerts.services import channels, notify
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


def _rows(now: datetime) -> Iterable[tuple[str, Any, list[int]]]:
    leaf_bands = parse_bands(settings.CLUSTERPANEL_EXPIRY_BANDS)
    ca_bands = parse_bands(settings.CLUSTERPANEL_CA_EXPIRY_BANDS)
    leaves = Certificate.objects.filter(
        status=CertificateStatus.ACTIVE, not_after__lte=now + timedelta(days=leaf_bands[0])
    ).select_related("cluster")
    cas = CertificateAuthority.objects.filter(
        status=CertificateStatus.ACTIVE, not_after__lte=now + timedelta(days=ca_bands[0])
    ).select_related("cluster")
    for cert in leaves:
        yield "cert", cert, leaf_bands
    for ca in cas:
        yield "ca", ca, ca_bands


def _describe(kind: str, cert: Any) -> str:
    if kind == "ca":
        return f"CA {cert.name}"
    return f"{cert.name} of {cert.node_name}" if cert.node_name else str(cert.name)


def alert_expiry_bands(now: datetime | None = None) -> int:
    """Notify every band newly crossed; how many alerts went out (one per certificate and band)."""
    now = now or timezone.now()
    pending: list[tuple[str, Any, str]] = []
    for kind, cert, bands in _rows(now):
        band = band_of(cert.not_after, now, bands)
        if band is not None:
            pending.append((kind, cert, band))
    if not pending:
        return 0
    keys = {f"expiry:{kind}:{cert.pk}:band:{band}" for kind, cert, band in pending}
    cluster_ids = {cert.cluster_id for _, cert, _ in pending}
    sent: dict[tuple[int, str], set[str]] = defaultdict(set)
    for cluster_id, key, channel in AlertDelivery.objects.filter(
        cluster_id__in=cluster_ids, key__in=keys
    ).values_list("cluster_id", "key", "channel"):
        sent[(cluster_id, key)].add(channel)
    configs = {c.cluster_id: c for c in AlertSettings.objects.filter(cluster_id__in=cluster_ids)}
    count = 0
    for kind, cert, band in pending:
        config = configs.get(cert.cluster_id)
        if config is None:
            continue
        key = f"expiry:{kind}:{cert.pk}:band:{band}"
        wanted = {channel for channel, _ in channels(config)}
        if wanted <= sent[(cert.cluster_id, key)]:
            continue
        cluster: Cluster = cert.cluster
        what = _describe(kind, cert)
        if band == EXPIRED:
            subject = f"{what} expired on {cert.not_after:%Y-%m-%d %H:%M} UTC"
        else:
            subject = f"{what} expires within {band} days ({cert.not_after:%Y-%m-%d %H:%M} UTC)"
        payload = {
            "kind": "certificate_expiry",
            "certificate": {
                "id": cert.pk,
                "type": kind,
                "name": cert.name,
                "node": getattr(cert, "node_name", ""),
                "common_name": cert.common_name,
                "serial": cert.serial,
                "not_after": cert.not_after.isoformat(),
            },
            "band": band,
            "days_left": round((cert.not_after - now).total_seconds() / 86400, 2),
        }
        if notify(cluster, key, subject, payload, config=config):
            count += 1
    return count
