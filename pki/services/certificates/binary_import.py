"""Taking over the PKI of an existing binary-installed cluster from its certificates and units.

The operator uploads two archives (tar, tar.gz/bz2/xz or zip, read by ``pki.domain.archive``
with its path, link and size checks): the certificate directory (``/etc/k8s/ssl`` and the
kubeconfigs) and the systemd unit files with their environment files. The units may instead
travel in the certificate archive, under a ``units/`` folder (or simply as ``*.service`` files);
the second archive is then left out.

``pki.domain.binary_import`` decides which file is which; this module stores the result in one
transaction like the kubeadm import does (``pki_imports``): the CAs adopted (certificates signed by
a replaced CA superseded), the leaves as active ledger rows under the layout's names (their
predecessors superseded), the service-account key, every finding as an open
``nodes.health.findings.Finding`` of the cluster (the findings of an earlier import resolved) and
one audit event ``pki.import.binary``. A CA key that is too weak refuses the whole upload, as an
unreadable archive does; nothing is written then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.health.findings import Finding
from nodes.models import Cluster, ClusterFlavor
from pki.domain import archive, binary_import
from pki.domain.binary_import import ImportPlan, NodeRef
from pki.domain.x509 import PKIError
from pki.models.certificates import (
    CASource,
    Certificate,
    CertificateAuthority,
)
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.issuing import usages_of
from pki.services.certificates.pki_imports import _adopt_ca, _weak_key
from pki.services.certificates.store import active_tree, lock_cluster, store_leaf, store_sa_key

__all__ = ["BinaryImportResult", "import_binary_cluster"]


@dataclass
class BinaryImportResult:
    """What the import stored, and the plan it followed (mapping table, findings, notes)."""

    plan: ImportPlan
    authorities: list[CertificateAuthority]
    certificates: list[Certificate]
    superseded: int
    findings: list[Finding]

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the API (and the page's table): no key material, ever."""
        return {
            "authorities": [
                {
                    "name": ca.name,
                    "file": self.plan.cas[ca.name].file,
                    "common_name": ca.common_name,
                    "serial": ca.serial,
                    "fingerprint_sha256": ca.fingerprint_sha256,
                }
                for ca in self.authorities
            ],
            "certificates": [
                {
                    "id": row.pk,
                    "name": row.name,
                    "node": row.node_name,
                    "common_name": row.common_name,
                    "serial": row.serial,
                    "not_after": row.not_after.isoformat(),
                }
                for row in self.certificates
            ],
            "service_account": self.plan.sa_file or None,
            "mappings": [
                {
                    "file": m.file,
                    "service": m.service,
                    "flag": m.flag,
                    "ledger": m.ledger,
                    "stored": m.stored,
                }
                for m in self.plan.mappings
            ],
            "findings": [
                {
                    "kind": f.kind,
                    "severity": f.severity,
                    "path": f.path,
                    "message": f.message,
                    "suggestion": f.suggestion,
                }
                for f in self.plan.findings
            ],
            "units": [
                {
                    "file": unit.name,
                    "service": unit.service,
                    "flags": len(unit.flags),
                    "unresolved": unit.unresolved,
                }
                for unit in self.plan.units
            ],
            "superseded": self.superseded,
            "notes": self.plan.notes,
        }


def _read(data: bytes | None, field: str) -> dict[str, bytes]:
    if data is None:
        return {}
    try:
        return archive.read_archive(data)
    except PKIError as exc:
        raise PKIInputError(str(exc), field) from None


def _plan(cluster: Cluster, certificates: bytes, units: bytes | None) -> ImportPlan:
    cert_files = _read(certificates, "certificates")
    unit_files = _read(units, "units")
    if not unit_files:
        cert_files, unit_files = binary_import.split_upload(cert_files)
        units_field = "certificates"
    else:
        units_field = "units"
    if not any(name.endswith(".service") for name in unit_files):
        where = "the units archive" if units_field == "units" else "the archive"
        raise PKIInputError(
            f"{where} holds no .service unit file (upload them as the units archive, or under "
            "a units/ folder of the certificate archive)",
            units_field,
        )
    nodes = [NodeRef(node.name, node.address) for node in cluster.nodes.all()]
    try:
        plan = binary_import.plan_import(cert_files, unit_files, nodes)
    except PKIError as exc:
        raise PKIInputError(str(exc), "certificates") from None
    weak = [f"{ca.file}: {_weak_key(ca.key)}" for ca in plan.cas.values() if _weak_key(ca.key)]
    if weak:
        raise PKIInputError.many({"certificates": sorted(set(weak))})
    return plan


def _text(value: str, limit: int) -> str:
    # Paths come from the uploaded units: PostgreSQL text holds no NUL byte; varchars are capped.
    return value.replace("\x00", "")[:limit]


def _store_findings(cluster: Cluster, plan: ImportPlan) -> list[Finding]:
    """The plan's findings as the cluster's open ones; an earlier import's are resolved."""
    now = timezone.now()
    Finding.objects.open().filter(cluster=cluster, kind__in=binary_import.KINDS).update(
        resolved_at=now
    )
    return [
        Finding.objects.create(
            cluster=cluster,
            node=None,
            kind=f.kind,
            severity=f.severity,
            path=_text(f.path, 512),
            message=_text(f.message, 1000),
            suggestion=_text(f.suggestion, 300),
            first_seen=now,
            last_seen=now,
        )
        for f in plan.findings
    ]


def import_binary_cluster(
    cluster: Cluster, certificates: bytes, units: bytes | None = None, *, actor: Actor
) -> BinaryImportResult:
    """Map, check and store the PKI of a binary-installed cluster (see the module docstring)."""
    if cluster.flavor != ClusterFlavor.BINARY:
        raise PKIInputError(
            "this cluster is a kubeadm cluster; import its PKI as a kubeadm tree instead"
        )
    plan = _plan(cluster, certificates, units)
    nodes = {node.name: node for node in cluster.nodes.all()}
    with transaction.atomic():
        lock_cluster(cluster)
        authorities, superseded = [], 0
        for role, placed in plan.cas.items():
            ca, retired = _adopt_ca(cluster, role, placed.cert, placed.key, CASource.CFSSL)
            authorities.append(ca)
            superseded += retired
        if plan.sa_key is not None:
            store_sa_key(cluster, plan.sa_key)
        cas = {ca.name: ca for ca in authorities}
        existing = active_tree(cluster)
        stored: list[Certificate] = []
        for leaf in plan.leaves:
            old = existing.get((leaf.name, leaf.node))
            if old is not None and old.status == "active":
                old.mark_superseded(None)
                superseded += 1
            stored.append(
                store_leaf(
                    cluster,
                    cas[leaf.signer],
                    leaf.cert,
                    leaf.key,
                    name=leaf.name,
                    node=nodes.get(leaf.node) if leaf.node else None,
                    usages=usages_of(leaf.cert),
                )
            )
        findings = _store_findings(cluster, plan)
        result = BinaryImportResult(plan, authorities, stored, superseded, findings)
        audit.record(
            "pki.import.binary",
            actor,
            obj=cluster,
            details={
                "authorities": {ca.name: ca.fingerprint_sha256 for ca in authorities},
                "certificates": [f"{row.name}:{row.serial}" for row in stored][:50],
                "findings": len(findings),
            },
        )
    return result
