"""Taking over an existing PKI (kubeadm tree, cfssl CA) and signing cfssl requests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from pki.domain import archive, cfssl, importer, kubeadm
from pki.domain.identities import Door, apiserver_hosts
from pki.domain.x509 import (
    MIN_RSA_BITS,
    PKIError,
    PrivateKey,
    ca_cert_common_name,
    fingerprint_sha256,
)
from pki.models.certificates import (
    CAName,
    CASource,
    Certificate,
    CertificateAuthority,
    CertificateKind,
    CertificateStatus,
)
from pki.services import identities as identity_policy
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.issuing import usages_of
from pki.services.certificates.spec import node_spec
from pki.services.certificates.store import (
    active_cas,
    active_tree,
    lock_cluster,
    store_ca,
    store_leaf,
    store_sa_key,
)


@dataclass
class ImportResult:
    """What an import stored."""

    authorities: list[CertificateAuthority]
    certificates: list[Certificate]
    superseded: int
    notes: list[str]


def _weak_key(key: PrivateKey) -> str | None:
    size = getattr(key, "key_size", None)
    if hasattr(key, "curve"):
        return None
    if size is not None and size < MIN_RSA_BITS:
        return f"is RSA {size}; RSA keys must have at least {MIN_RSA_BITS} bits"
    return None


def _retire_signed_by(cluster: Cluster, names: Iterable[str]) -> int:
    """Supersede active certificates whose CA is about to be replaced: they would not chain."""
    now = timezone.now()
    return (
        Certificate.objects.active()
        .filter(cluster=cluster, authority__name__in=list(names))
        .update(status=CertificateStatus.SUPERSEDED, status_changed_at=now)
    )


def _adopt_ca(
    cluster: Cluster, name: str, cert: x509.Certificate, key: PrivateKey, source: str
) -> tuple[CertificateAuthority, int]:
    """Make ``cert`` the active CA ``name``; keeps the current row when it is the same CA."""
    current = active_cas(cluster).get(name)
    if current is not None and current.fingerprint_sha256 == fingerprint_sha256(cert):
        return current, 0
    retired = _retire_signed_by(cluster, [name])
    return store_ca(cluster, name, cert, key, source), retired


_SHARED_LEAVES = (
    "apiserver-kubelet-client",
    "front-proxy-client",
    "apiserver-etcd-client",
    "etcd/healthcheck-client",
)
_PER_NODE_LEAVES = ("apiserver", "etcd/server", "etcd/peer")


def _record_import(cluster: Cluster, action: str, result: ImportResult, actor: Actor) -> None:
    audit.record(
        action,
        actor,
        obj=cluster,
        details={
            "authorities": {ca.name: ca.fingerprint_sha256 for ca in result.authorities},
            "certificates": len(result.certificates),
        },
    )


def import_kubeadm_archive(
    cluster: Cluster, data: bytes, node: Node | None = None, *, actor: Actor
) -> ImportResult:
    """Take over an existing kubeadm PKI from a tar/zip of ``/etc/kubernetes`` or ``pki/``.

    Every file is checked first (``pki.domain.importer``); any problem refuses the whole upload
    with the problems listed per file, and nothing is stored. On success the CAs and ``sa`` keys
    become the cluster's (keeping their fingerprints), as do the shared leaf certificates and,
    when ``node`` names the control-plane node the tree came from, its per-node ones.
    Certificates signed by a replaced CA are superseded.
    """
    try:
        files = archive.read_archive(data)
    except PKIError as exc:
        raise PKIInputError(str(exc), "archive") from None
    report = importer.validate_kubeadm_pki(files)
    problems = list(report.problems)
    for result in report.files:
        problems += [f"{result.name}: {p}" for p in result.problems]
    for name, (_, key) in report.cas.items():
        weak = _weak_key(key)
        if weak:
            problems.append(f"{name}.key: {weak}")
    if problems:
        raise PKIInputError.many({"archive": problems})
    notes = [f"{r.name}: {n}" for r in report.files for n in r.notes]
    with transaction.atomic():
        lock_cluster(cluster)
        authorities, superseded = [], 0
        for name, (cert, key) in report.cas.items():
            ca, retired = _adopt_ca(cluster, name, cert, key, CASource.KUBEADM)
            authorities.append(ca)
            superseded += retired
        if report.service_account is not None:
            store_sa_key(cluster, report.service_account[0])
        cas = active_cas(cluster)
        wanted = list(_SHARED_LEAVES) + (list(_PER_NODE_LEAVES) if node is not None else [])
        existing = active_tree(cluster)
        certificates = []
        for name in wanted:
            if name not in report.leaves:
                continue
            cert, key = report.leaves[name]
            node_name = node.name if node is not None and name in _PER_NODE_LEAVES else ""
            old = existing.get((name, node_name or None))
            if old is not None:
                old.mark_superseded(None)
                superseded += 1
            certificates.append(
                store_leaf(
                    cluster,
                    cas[importer.LEAF_SIGNERS[name]],
                    cert,
                    key,
                    name=name,
                    node=node if node_name else None,
                    usages=usages_of(cert),
                )
            )
        imported = ImportResult(authorities, certificates, superseded, notes)
        _record_import(cluster, "pki.import.kubeadm", imported, actor)
    return imported


_CFSSL_FIELDS = (("ca-key.pem", "ca_key_pem"), ("ca.pem", "ca_pem"))


def import_cfssl_ca(
    cluster: Cluster, ca_pem: bytes, ca_key_pem: bytes, name: str = CAName.CA, *, actor: Actor
) -> ImportResult:
    """Make a cfssl CA (``ca.pem`` + ``ca-key.pem``) the cluster's CA ``name``."""
    if name not in CAName.values:
        raise PKIInputError(f"unknown CA {name!r}; one of {', '.join(CAName.values)}", "name")
    try:
        cert, key = importer.import_cfssl_ca(ca_pem, ca_key_pem)
    except PKIError as exc:
        errors: dict[str, list[str]] = {}
        for problem in str(exc).split("; "):
            target = next((f for prefix, f in _CFSSL_FIELDS if problem.startswith(prefix)), None)
            errors.setdefault(target or "ca_pem", []).append(problem)
        raise PKIInputError.many(errors) from None
    with transaction.atomic():
        lock_cluster(cluster)
        ca, retired = _adopt_ca(cluster, name, cert, key, CASource.CFSSL)
        result = ImportResult([ca], [], retired, [])
        _record_import(cluster, "pki.import.cfssl", result, actor)
    return result


def create_ca_from_cfssl_csr(
    cluster: Cluster, csr_json: str | bytes, name: str = CAName.CA, *, actor: Actor
) -> ImportResult:
    """A new CA made like ``cfssl gencert -initca ca-csr.json``, as the cluster's CA ``name``."""
    if name not in CAName.values:
        raise PKIInputError(f"unknown CA {name!r}; one of {', '.join(CAName.values)}", "name")
    try:
        request = cfssl.parse_ca_csr(csr_json)
        cert, key = cfssl.create_ca_from_csr(request)
    except PKIError as exc:
        raise PKIInputError(str(exc), "ca_csr") from None
    with transaction.atomic():
        lock_cluster(cluster)
        ca, retired = _adopt_ca(cluster, name, cert, key, CASource.CFSSL_CSR)
        result = ImportResult([ca], [], retired, [])
        _record_import(cluster, "pki.import.cfssl-csr", result, actor)
    return result


def _apiserver_names(cluster: Cluster) -> frozenset[str]:
    """The names the cluster's API servers answer to (from the inventory, issued or not)."""
    endpoint = cluster.normalized_endpoint if cluster.control_plane_endpoint else ""
    spec = kubeadm.ClusterSpec(
        control_plane_endpoint=endpoint,
        service_subnet=cluster.service_subnet,
        dns_domain=cluster.dns_domain,
        extra_sans=tuple(cluster.extra_sans or ()),
        nodes=tuple(node_spec(node) for node in cluster.nodes.all()),
    )
    return apiserver_hosts(spec)


def cfssl_sign(
    cluster: Cluster,
    ca_config: str | bytes,
    profile: str,
    *,
    csr_json: str | bytes | None = None,
    csr_pem: bytes | None = None,
    authority: str = CAName.CA,
    actor: Actor,
) -> Certificate:
    """Sign a cfssl CSR JSON (new key, kept encrypted) or a PKCS#10 CSR with a named profile.

    The requested subject goes through the identity policy before anything is signed: a CN or
    an O naming a privileged identity, a CA other than the cluster CA, or (for a profile good for
    server authentication) a SAN naming the API server needs an admin, and is audited.
    """
    if (csr_json is None) == (csr_pem is None):
        raise PKIInputError("give either a cfssl CSR JSON or a PKCS#10 CSR", "csr")
    try:
        config = cfssl.parse_ca_config(ca_config)
    except PKIError as exc:
        raise PKIInputError(str(exc), "ca_config") from None
    try:
        chosen = config.profile(profile)
    except PKIError as exc:
        raise PKIInputError(str(exc), "profile") from None
    ca = active_cas(cluster).get(authority)
    if ca is None:
        raise PKIInputError(f"the cluster has no CA {authority!r}", "authority")
    if ca.not_after <= timezone.now():
        raise PKIInputError(f"the CA {authority!r} has expired", "authority")
    field_name = "csr_json" if csr_json is not None else "csr_pem"
    try:
        if csr_json is not None:
            request = cfssl.parse_csr(csr_json)
            identity = cfssl.csr_json_identity(request)
        else:
            identity = cfssl.pkcs10_identity(csr_pem or b"")
    except PKIError as exc:
        raise PKIInputError(str(exc), field_name) from None
    privileged = identity_policy.authorize(
        actor,
        Door.CERTIFICATE,
        {"user": field_name, "group": field_name, "host": field_name, "authority": "authority"},
        user=identity.common_name,
        groups=identity.organizations,
        authority=authority,
        hosts=identity.hosts,
        serves=chosen.serves,
        protected_hosts=_apiserver_names(cluster),
    )
    key: PrivateKey | None = None
    try:
        if csr_json is not None:
            cert, key = cfssl.sign_csr_json(
                request, profile, config, ca.certificate, ca.private_key
            )
        else:
            cert = cfssl.sign_pkcs10(
                csr_pem or b"", profile, config, ca.certificate, ca.private_key
            )
    except PKIError as exc:
        message = str(exc)
        if "after its CA" in message or "CA expired" in message:
            raise PKIInputError(message, "profile") from None
        raise PKIInputError(message, field_name) from None
    name = f"cfssl:{ca_cert_common_name(cert) or 'unnamed'}"[:64]
    with transaction.atomic():
        row = store_leaf(
            cluster, ca, cert, key, name=name, kind=CertificateKind.CFSSL, usages=chosen.usages
        )
        audit.record(
            "pki.cfssl.sign",
            actor,
            obj=row,
            cluster=cluster,
            details={
                "profile": profile,
                "serial": row.serial,
                "authority": authority,
                "common_name": row.common_name,
                "groups": row.organizations,
                "hosts": [*row.dns_names, *row.ip_addresses],
                "privileged": privileged,
            },
        )
    return row
