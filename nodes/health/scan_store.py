"""The certificate scan's results kept: scanned certificates replaced per node, findings opened,
updated or resolved (``nodes.health.drift`` decides them; this module keeps them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from nodes.health import drift
from nodes.health.findings import Finding, ScannedCertificate
from nodes.models import Cluster, Node, NodeRole
from nodes.recipes import cert_scan


def expiry_bands() -> tuple[int, ...]:
    return drift.parse_bands(str(settings.CLUSTERPANEL_EXPIRY_BANDS))


def ledger(cluster: Cluster, nodes: Sequence[Node]) -> drift.Ledger:
    """What the panel holds for ``nodes``: their bundles' certificates and shared keys, and every
    fingerprint it ever issued or imported for the cluster. A cluster whose PKI is not issued
    yet has no bundles: only the fingerprints (none) and endpoint are compared then."""
    from clusterpanel.errors import InputError
    from pki.models import Certificate, CertificateAuthority
    from pki.services.certificates import nodes_bundle_files

    try:
        bundles = nodes_bundle_files(cluster, nodes, include_super_admin=False)
    except InputError:
        bundles = {}
    expected: dict[str, dict[str, str]] = {}
    keys: dict[str, str] = {}
    for name, files in bundles.items():
        contents = {path: f.content for path, f in files.items()}
        scanned = drift.ScannedNode(name, "", "", cert_scan.parse_stream(
            cert_scan.bundle_stream(contents))["certificates"])  # fmt: skip
        expected[name] = {
            row.path: row.fingerprint
            for row in drift.evaluate([scanned], drift.Ledger(), timezone.now(), (1,)).rows
        }
        for relative in cert_scan.SHARED_KEYS:
            if relative in contents and f"{cert_scan.ROOT}/{relative}" not in keys:
                keys[f"{cert_scan.ROOT}/{relative}"] = drift.public_key_digest(contents[relative])
    known = set(
        Certificate.objects.filter(cluster=cluster).values_list("fingerprint_sha256", flat=True)
    )
    known |= set(
        CertificateAuthority.objects.filter(cluster=cluster).values_list(
            "fingerprint_sha256", flat=True
        )
    )
    hosts = (cluster.endpoint_host,) if cluster.control_plane_endpoint else ()
    return drift.Ledger(expected, keys, frozenset(known), hosts)


@transaction.atomic
def record_scan(
    cluster: Cluster,
    scanned: Sequence[drift.ScannedNode],
    all_nodes: Sequence[Node],
    now: dt.datetime | None = None,
) -> drift.Result:
    """Keep one scan of ``scanned`` (the nodes that answered) among ``all_nodes`` (those the job
    targeted). Findings about a node that did not answer are left as they are; a cluster-wide
    finding is resolved only when every targeted control-plane node answered."""
    now = now or timezone.now()
    by_name = {node.name: node for node in all_nodes}
    result = drift.evaluate(scanned, ledger(cluster, all_nodes), now, expiry_bands())
    answered = {node.name for node in scanned}
    control_planes = {n.name for n in all_nodes if n.role == NodeRole.CONTROL_PLANE}

    ScannedCertificate.objects.filter(
        cluster=cluster, node__name__in=answered, node__cluster=cluster
    ).delete()
    ScannedCertificate.objects.bulk_create(
        ScannedCertificate(
            cluster=cluster,
            node=by_name[row.node],
            path=row.path[:512],
            subject=row.subject[:1000],
            issuer=row.issuer[:1000],
            sans=list(row.sans),
            not_after=row.not_after,
            fingerprint=row.fingerprint,
            scanned_at=now,
        )
        for row in result.rows
    )

    open_findings = {
        (f.node.name if f.node is not None else None, f.kind, f.path): f
        for f in Finding.objects.open()
        .filter(cluster=cluster, kind__in=drift.KINDS)
        .select_related("node")
        .select_for_update(of=("self",))
    }
    seen = set()
    for spec in result.findings:
        key = (spec.node, spec.kind, spec.path[:512])
        seen.add(key)
        fields = {
            "severity": spec.severity,
            "message": spec.message[:1000],
            "suggestion": spec.suggestion[:300],
            "action_kind": spec.action,
            "last_seen": now,
        }
        found = open_findings.get(key)
        if found is None:
            Finding.objects.create(
                cluster=cluster,
                node=by_name[spec.node] if spec.node is not None else None,
                kind=spec.kind,
                path=spec.path[:512],
                first_seen=now,
                **fields,
            )
        else:
            for name, value in fields.items():
                setattr(found, name, value)
            found.save(update_fields=list(fields))
    cluster_wide_done = control_planes <= answered
    for key, found in open_findings.items():
        node_name = key[0]
        covered = node_name in answered if node_name is not None else cluster_wide_done
        if key not in seen and covered:
            found.resolved_at = now
            found.save(update_fields=["resolved_at"])
    return result
