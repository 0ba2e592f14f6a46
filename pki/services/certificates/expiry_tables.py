"""``kubeadm certs check-expiration`` over the stored PKI, per control-plane node."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from django.utils import timezone

from nodes.models import Cluster, NodeRole
from pki.domain import expiry, kubeadm
from pki.services.certificates.store import active_cas, active_tree


def expiration(cluster: Cluster, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """``kubeadm certs check-expiration`` for every control-plane node, as text and rows."""
    moment = now or timezone.now()
    certs: dict[tuple[str, str | None], x509.Certificate] = {
        key: row.certificate for key, row in active_tree(cluster).items()
    }
    for name, ca in active_cas(cluster).items():
        certs[(name, None)] = ca.certificate
    external = cluster.etcd_topology == kubeadm.TOPOLOGY_EXTERNAL
    tables = []
    for node in cluster.nodes.filter(role=NodeRole.CONTROL_PLANE).order_by("name"):
        rows, ca_rows = expiry.node_expiration_rows(certs, node.name, external)
        tables.append(
            {
                "node": node.name,
                "text": expiry.check_expiration_table(rows, ca_rows, moment),
                # Sorted by name like the text, which kubeadm sorts.
                "certificates": [
                    _expiry_row(r, moment, True) for r in sorted(rows, key=lambda r: r.name)
                ],
                "authorities": [
                    _expiry_row(r, moment, False) for r in sorted(ca_rows, key=lambda r: r.name)
                ],
            }
        )
    return tables


def _expiry_row(row: expiry.ExpirationRow, now: dt.datetime, leaf: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"name": row.name, "missing": row.not_after is None}
    if row.not_after is not None:
        remaining = row.not_after - now
        days = int(remaining.total_seconds() // 86400)
        data.update(
            expires=expiry.go_date(row.not_after),
            residual_time=expiry.residual(remaining),
            not_after=row.not_after.isoformat(),
            days_left=days,
            band=expiry.band(days),
        )
    if leaf:
        data["certificate_authority"] = row.ca_name
    data["externally_managed"] = row.externally_managed
    return data
