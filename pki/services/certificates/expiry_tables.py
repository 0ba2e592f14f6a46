"""``kubeadm certs check-expiration`` over the stored PKI, per control-plane node; for a binary
cluster the same table per node over the files that node holds (``binary_layout.holds``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from django.utils import timezone

from nodes.models import Cluster, NodeRole
from pki.domain import binary_layout, binary_plan, expiry, kubeadm
from pki.services.certificates.spec import cluster_spec, is_binary, node_spec
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
    binary = is_binary(cluster)
    nodes = cluster.nodes.order_by("name")
    if not binary:
        nodes = nodes.filter(role=NodeRole.CONTROL_PLANE)
    spec = cluster_spec(cluster, nodes=cluster.nodes.order_by("name")) if binary else None
    for node in nodes:
        if spec is not None:
            rows, ca_rows = _binary_rows(spec, certs, node_spec(node))
        else:
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


def _binary_rows(
    spec: kubeadm.ClusterSpec,
    certs: dict[tuple[str, str | None], x509.Certificate],
    node: kubeadm.NodeSpec,
) -> tuple[list[expiry.ExpirationRow], list[expiry.ExpirationRow]]:
    """The files of the binary layout ``node`` holds, named by file base, and the CAs it trusts;
    a file the node should hold but the ledger lacks is a ``!MISSING!`` row."""
    member = binary_plan.is_etcd_member(spec, node)
    rows = []
    for cert in binary_layout.CERTS:
        if not binary_layout.holds(cert, node.role, etcd_member=member):
            continue
        found = certs.get((cert.name, node.name if cert.per_node else None))
        ca_file = binary_layout.CA_FILES[cert.signer]
        rows.append(
            expiry.ExpirationRow(cert.name, None)
            if found is None
            else expiry.ExpirationRow.for_certificate(cert.name, found, ca_file)
        )
    wanted = {binary_layout.CERTS_BY_NAME[r.name].signer for r in rows}
    if node.role == kubeadm.ROLE_CONTROL_PLANE:
        wanted.update(binary_layout.CA_FILES)
    ca_rows = []
    for ca_name in sorted(wanted):
        found = certs.get((ca_name, None))
        ca_file = binary_layout.CA_FILES[ca_name]
        ca_rows.append(
            expiry.ExpirationRow(ca_file, None)
            if found is None
            else expiry.ExpirationRow.for_certificate(ca_file, found)
        )
    return rows, ca_rows


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
