"""Signing kubeadm's files with the stored CAs: issue what is missing, reissue, renew."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from pki.domain import kubeadm
from pki.domain.x509 import (
    USAGE_CLIENT,
    CertSpec,
    PKIError,
    PrivateKey,
    sign_certificate,
)
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
    CertificateKind,
)
from pki.services.certificates.authorities import ensure_cluster_cas
from pki.services.certificates.checks import coverage
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.spec import current_plan, is_binary
from pki.services.certificates.store import (
    active_cas,
    active_tree,
    lock_cluster,
    nodes_by_name,
    store_leaf,
)


@dataclass
class IssueResult:
    """What an issue call wrote, and kubeadm's warnings (dropped certSANs, say)."""

    created: list[Certificate]
    warnings: list[str] = field(default_factory=list)


def _check_fits(spec: CertSpec, ca: CertificateAuthority, field_name: str) -> None:
    """Refuse, before any key is generated, a certificate that would outlive its CA."""
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
    if start + dt.timedelta(minutes=5) > ca.not_after:
        raise PKIInputError(
            f"{spec.name}: the CA {ca.name!r} expired on {ca.not_after:%Y-%m-%d %H:%M} UTC; "
            "import or create a new CA first",
            field_name,
        )
    if start + spec.validity > ca.not_after:
        raise PKIInputError(
            f"{spec.name}: a validity of {spec.validity.days} days would end after the CA "
            f"{ca.name!r} expires ({ca.not_after:%Y-%m-%d %H:%M} UTC); shorten the validity",
            field_name,
        )


def sign_specs(
    cluster: Cluster,
    cas: dict[str, CertificateAuthority],
    specs: Sequence[CertSpec],
    keys: Sequence[PrivateKey | None] | None = None,
    field_name: str = "validity",
) -> list[tuple[CertSpec, x509.Certificate, PrivateKey]]:
    """Sign ``specs`` with the stored CAs; fresh keys unless ``keys`` gives one per spec."""
    for spec in specs:
        if spec.signer not in cas:
            raise PKIInputError(f"{spec.name}: the cluster has no CA {spec.signer!r}", field_name)
        _check_fits(spec, cas[spec.signer], field_name)
    wanted = list(keys) if keys is not None else [None] * len(specs)
    fresh = kubeadm.generate_keys(cluster.key_algorithm, sum(k is None for k in wanted))
    out = []
    for spec, given in zip(specs, wanted, strict=True):
        key = given if given is not None else fresh.pop()
        ca = cas[spec.signer or ""]
        try:
            cert = sign_certificate(spec, key.public_key(), ca.certificate, ca.private_key)
        except PKIError as exc:
            raise PKIInputError(str(exc), field_name) from None
        out.append((spec, cert, key))
    return out


def _store_spec(
    cluster: Cluster,
    cas: dict[str, CertificateAuthority],
    nodes: dict[str, Node],
    spec: CertSpec,
    cert: x509.Certificate,
    key: PrivateKey,
) -> Certificate:
    return store_leaf(
        cluster,
        cas[spec.signer or ""],
        cert,
        key,
        name=spec.name,
        node=nodes.get(spec.node or ""),
        node_name=spec.node or "",
        usages=spec.usages,
    )


def issue_missing(cluster: Cluster, *, actor: Actor) -> IssueResult:
    """Issue every file of the current plan that has no active certificate yet.

    Idempotent: a second call finds nothing missing and writes (and records) nothing. CAs and
    the ``sa`` key pair are created on the first call and reused afterwards.
    """
    the_plan = current_plan(cluster)
    with transaction.atomic():
        cas = ensure_cluster_cas(cluster)
        existing = active_tree(cluster)
        missing = [s for s in the_plan.specs if not s.is_ca and s.key not in existing]
        nodes = nodes_by_name(cluster)
        created = [
            _store_spec(cluster, cas, nodes, spec, cert, key)
            for spec, cert, key in sign_specs(cluster, cas, missing)
        ]
        if created:
            audit.record(
                "pki.issue", actor, obj=cluster, details={"created": [str(c) for c in created]}
            )
    return IssueResult(created, the_plan.warnings)


def _replace(
    cluster: Cluster,
    old: Certificate,
    authority: CertificateAuthority,
    spec: CertSpec,
    cert: x509.Certificate,
    key: PrivateKey,
) -> Certificate:
    # Retire first: the active-file constraint allows only one active row per file.
    old.mark_superseded(None)
    new = store_leaf(
        cluster,
        authority,
        cert,
        key,
        name=old.name,
        node=old.node,
        node_name=old.node_name,
        kind=old.kind,
        usages=spec.usages,
    )
    old.superseded_by = new
    old.save(update_fields=["superseded_by"])
    return new


def _selected(
    rows: dict[int, Certificate], ids: Sequence[int] | None, what: str
) -> list[Certificate]:
    if ids is None:
        return list(rows.values())
    unknown = sorted(set(ids) - set(rows))
    if unknown:
        raise PKIInputError(
            f"certificate(s) {', '.join(map(str, unknown))} are not active {what} of this cluster",
            "certificates",
        )
    return [rows[i] for i in dict.fromkeys(ids)]


def reissue(
    cluster: Cluster, ids: Sequence[int] | None = None, *, actor: Actor
) -> list[Certificate]:
    """Re-sign the certificates that no longer cover the topology (or the chosen tree files).

    New keys, same CAs and ``sa`` keys, current SANs; the old rows become ``superseded``.
    """
    the_plan = current_plan(cluster)
    with transaction.atomic():
        lock_cluster(cluster)
        cas = ensure_cluster_cas(cluster)
        if ids is None:
            targets = [(s.certificate, s.spec) for s in coverage(cluster).stale]
        else:
            tree = {c.pk: c for c in active_tree(cluster).values()}
            rows = _selected(tree, ids, "kubeadm files")
            targets = []
            for row in rows:
                try:
                    targets.append((row, the_plan.get(row.name, row.node_name or None)))
                except PKIError as exc:
                    raise PKIInputError(str(exc), "certificates") from None
        signed = sign_specs(cluster, cas, [spec for _, spec in targets])
        created = [
            _replace(cluster, row, cas[spec.signer or ""], spec, cert, key)
            for (row, _), (spec, cert, key) in zip(targets, signed, strict=True)
        ]
        audit.record("pki.reissue", actor, obj=cluster, details={"reissued": len(created)})
        return created


def usages_of(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return (USAGE_CLIENT,)
    usages = []
    if x509.ExtendedKeyUsageOID.SERVER_AUTH in eku:
        usages.append("server")
    if x509.ExtendedKeyUsageOID.CLIENT_AUTH in eku:
        usages.append("client")
    return tuple(usages) or (USAGE_CLIENT,)


def spec_of(row: Certificate, validity: dt.timedelta) -> CertSpec:
    """The spec a stored certificate was made from: same subject, SANs and usages."""
    return CertSpec(
        name=row.name,
        signer=row.authority.name,
        common_name=row.common_name,
        organizations=tuple(row.organizations),
        dns_names=tuple(row.dns_names),
        ip_addresses=tuple(row.ip_addresses),
        usages=tuple(row.usages) or usages_of(row.certificate),
        node=row.node_name or None,
        validity=validity,
    )


def renew(
    cluster: Cluster,
    ids: Sequence[int] | None = None,
    *,
    reuse_key: bool = False,
    validity_days: int | None = None,
    actor: Actor,
) -> list[Certificate]:
    """Renew leaf certificates like ``kubeadm certs renew``: same subject and SANs, new serial
    and validity, a new key unless ``reuse_key``. CAs are never renewed here.

    Only the kubeadm tree is renewed, as ``kubeadm certs renew`` does (with, when the whole tree
    is, the panel's own identities): a user's kubeconfig certificate is replaced by issuing the
    user a new kubeconfig, since a renewed key that nobody downloads would help no one.
    """
    days = validity_days or cluster.certificate_validity_days
    if days < 1:
        raise PKIInputError("the validity must be at least one day", "validity_days")
    # A binary cluster's files last as long as their signing profile says, unless asked otherwise.
    planned: dict[tuple[str, str | None], dt.timedelta] = {}
    if validity_days is None and is_binary(cluster):
        planned = {spec.key: spec.validity for spec in current_plan(cluster).specs}
    with transaction.atomic():
        lock_cluster(cluster)
        cas = active_cas(cluster)
        rows = {
            c.pk: c
            for c in Certificate.objects.active()
            .filter(cluster=cluster, kind=CertificateKind.KUBEADM)
            .select_related("authority", "node")
        }
        others = sorted(
            Certificate.objects.filter(cluster=cluster, pk__in=ids or [])
            .exclude(kind=CertificateKind.KUBEADM)
            .values_list("pk", flat=True)
        )
        if others:
            raise PKIInputError(
                f"certificate(s) {', '.join(map(str, others))} are not kubeadm files: issue the "
                "user a new kubeconfig instead of renewing",
                "certificates",
            )
        targets = _selected(rows, ids, "certificates")
        if ids is None:
            # The panel's own identities go with the whole tree (the health identity renews
            # itself too, and a replaced CA makes it issue anew: ``panel_identities``).
            targets += [
                row
                for row in Certificate.objects.active()
                .filter(cluster=cluster, kind=CertificateKind.PANEL)
                .select_related("authority", "node")
                if cas.get(row.authority.name) is not None
                and cas[row.authority.name].pk == row.authority_id
            ]
        for row in targets:
            if (
                cas.get(row.authority.name) is None
                or cas[row.authority.name].pk != row.authority_id
            ):
                raise PKIInputError(
                    f"{row}: its CA has been replaced; reissue it instead of renewing",
                    "certificates",
                )
        missing_key = [str(r) for r in targets if reuse_key and not r.private_key_pem]
        if missing_key:
            raise PKIInputError(f"no stored key to reuse for {', '.join(missing_key)}", "reuse_key")
        default = dt.timedelta(days=days)
        specs = [spec_of(r, planned.get((r.name, r.node_name or None), default)) for r in targets]
        keys = [r.private_key if reuse_key else None for r in targets]
        signed = sign_specs(cluster, cas, specs, keys, field_name="validity_days")
        created = [
            _replace(cluster, row, cas[spec.signer or ""], spec, cert, key)
            for row, (spec, cert, key) in zip(targets, signed, strict=True)
        ]
        audit.record(
            "pki.renew",
            actor,
            obj=cluster,
            details={"renewed": len(created), "reuse_key": reuse_key},
        )
        return created
