"""Django-aware glue between the inventory, the stored PKI and the pure modules.

The pure modules decide *what* a certificate holds (``pki.kubeadm``) and sign it (``pki.x509``);
this module reads the topology from the database, hands the stored CAs and keys to them and writes
the results back, always inside one transaction so that a refused request writes nothing.

Every failure a user can cause surfaces as ``PKIInputError`` with the name of the input field at
fault, which the API turns into ``{"errors": {field: [...]}}`` and the pages into form errors.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import re
import tarfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from django.db import transaction
from django.utils import timezone

from nodes.models import Cluster, Node
from pki import archive, cfssl, expiry, importer, kubeadm, kubeconfig
from pki import inspect as inspect_mod
from pki.models.certificates import (
    CAName,
    CASource,
    Certificate,
    CertificateAuthority,
    CertificateKind,
    CertificateStatus,
    ServiceAccountKey,
)
from pki.x509 import (
    USAGE_CLIENT,
    CertSpec,
    HostCheck,
    PKIError,
    PrivateKey,
    ca_cert_common_name,
    cert_dns_names,
    cert_ip_addresses,
    certificate_to_pem,
    check_host,
    create_ca,
    fingerprint_sha256,
    private_key_to_pem,
    public_key_to_pem,
    sign_certificate,
    spki_sha256,
)


class PKIInputError(PKIError):
    """A request the PKI refuses, with the input field to blame (``non_field_errors`` if none)."""

    def __init__(self, message: str, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field
        self.errors: dict[str, list[str]] = {field: [message]}

    @classmethod
    def many(cls, errors: dict[str, list[str]]) -> PKIInputError:
        """One error carrying several fields (an import reports per file)."""
        first_field = next(iter(errors))
        exc = cls(errors[first_field][0], first_field)
        exc.errors = errors
        return exc


# --------------------------------------------------------------------------- topology


def node_spec(node: Node) -> kubeadm.NodeSpec:
    """The pure-module view of a node."""
    return kubeadm.NodeSpec(name=node.name, address=str(node.address), role=node.role)


def cluster_spec(cluster: Cluster, nodes: Iterable[Node] | None = None) -> kubeadm.ClusterSpec:
    """The cluster's kubeadm settings and current nodes as a ``ClusterSpec``."""
    if nodes is None:
        nodes = cluster.nodes.order_by("name")
    return kubeadm.ClusterSpec(
        cluster_name=cluster.cluster_name,
        control_plane_endpoint=cluster.normalized_endpoint
        if cluster.control_plane_endpoint
        else "",
        service_subnet=cluster.service_subnet,
        dns_domain=cluster.dns_domain,
        extra_sans=tuple(cluster.extra_sans or ()),
        etcd_topology=cluster.etcd_topology,
        key_algorithm=cluster.key_algorithm,
        validity=dt.timedelta(days=cluster.certificate_validity_days),
        ca_validity=dt.timedelta(days=cluster.ca_validity_days),
        nodes=tuple(node_spec(n) for n in nodes),
    )


def current_plan(cluster: Cluster) -> kubeadm.Plan:
    """kubeadm's certificate plan for the cluster as it is now (PKIInputError if impossible)."""
    try:
        return kubeadm.plan(cluster_spec(cluster))
    except PKIError as exc:
        raise PKIInputError(f"the cluster's topology cannot be issued: {exc}", "cluster") from None


def _lock(cluster: Cluster) -> None:
    # Serialise issuing per cluster so two concurrent requests cannot both fill the same gap.
    Cluster.objects.select_for_update().filter(pk=cluster.pk).first()


# --------------------------------------------------------------------------- storage helpers


def _cert_facts(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "certificate_pem": certificate_to_pem(cert).decode(),
        "common_name": ca_cert_common_name(cert),
        "serial": inspect_mod._serial_hex(cert.serial_number),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "fingerprint_sha256": fingerprint_sha256(cert),
        "spki_sha256": spki_sha256(cert),
    }


def _store_ca(
    cluster: Cluster, name: str, cert: x509.Certificate, key: PrivateKey, source: str
) -> CertificateAuthority:
    """Write a CA as the active one of its name, retiring the previous one."""
    CertificateAuthority.objects.filter(
        cluster=cluster, name=name, status=CertificateStatus.ACTIVE
    ).update(status=CertificateStatus.SUPERSEDED)
    return CertificateAuthority.objects.create(
        cluster=cluster,
        name=name,
        source=source,
        private_key_pem=private_key_to_pem(key).decode(),
        **_cert_facts(cert),
    )


def _store_leaf(
    cluster: Cluster,
    authority: CertificateAuthority,
    cert: x509.Certificate,
    key: PrivateKey | None,
    *,
    name: str,
    node: Node | None = None,
    node_name: str = "",
    kind: str = CertificateKind.KUBEADM,
    usages: Sequence[str] = (),
) -> Certificate:
    organizations = [
        str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    ]
    return Certificate.objects.create(
        cluster=cluster,
        authority=authority,
        node=node,
        node_name=node.name if node is not None else node_name,
        kind=kind,
        name=name,
        organizations=organizations,
        dns_names=cert_dns_names(cert),
        ip_addresses=cert_ip_addresses(cert),
        usages=list(usages),
        issuer=ca_cert_common_name(authority.certificate),
        private_key_pem=private_key_to_pem(key).decode() if key is not None else "",
        **_cert_facts(cert),
    )


def active_cas(cluster: Cluster) -> dict[str, CertificateAuthority]:
    """The cluster's active CAs by name (``ca``, ``front-proxy-ca``, ``etcd/ca``)."""
    return {
        ca.name: ca
        for ca in CertificateAuthority.objects.filter(
            cluster=cluster, status=CertificateStatus.ACTIVE
        )
    }


def ensure_cluster_cas(cluster: Cluster) -> dict[str, CertificateAuthority]:
    """The three CAs and the ``sa`` key pair of ``cluster``, generating whichever are missing.

    Existing (generated or imported) CAs are never replaced: every node must keep trusting them.
    """
    with transaction.atomic():
        _lock(cluster)
        cas = active_cas(cluster)
        spec = cluster_spec(cluster, nodes=())
        missing = [s for s in kubeadm.ca_specs(spec) if s.name not in cas]
        need_sa = not ServiceAccountKey.objects.filter(
            cluster=cluster, status=CertificateStatus.ACTIVE
        ).exists()
        keys = kubeadm.generate_keys(cluster.key_algorithm, len(missing) + need_sa)
        for ca_spec in missing:
            key = keys.pop()
            cert = create_ca(ca_spec, key)
            cas[ca_spec.name] = _store_ca(cluster, ca_spec.name, cert, key, CASource.GENERATED)
        if need_sa:
            _store_sa_key(cluster, keys.pop())
        return cas


def _store_sa_key(cluster: Cluster, key: PrivateKey) -> ServiceAccountKey:
    ServiceAccountKey.objects.filter(cluster=cluster, status=CertificateStatus.ACTIVE).update(
        status=CertificateStatus.SUPERSEDED
    )
    return ServiceAccountKey.objects.create(
        cluster=cluster,
        private_key_pem=private_key_to_pem(key).decode(),
        public_key_pem=public_key_to_pem(key).decode(),
    )


def service_account_key(cluster: Cluster) -> ServiceAccountKey:
    """The active ``sa`` key pair (generated with the CAs when missing)."""
    found = ServiceAccountKey.objects.filter(
        cluster=cluster, status=CertificateStatus.ACTIVE
    ).first()
    if found is None:
        ensure_cluster_cas(cluster)
        found = ServiceAccountKey.objects.get(cluster=cluster, status=CertificateStatus.ACTIVE)
    return found


def ca_certificates(cluster: Cluster) -> list[x509.Certificate]:
    """The Kubernetes CA certificate(s), for ``--discovery-token-ca-cert-hash`` (one per CA)."""
    return [
        ca.certificate
        for ca in CertificateAuthority.objects.filter(
            cluster=cluster, name=CAName.CA, status=CertificateStatus.ACTIVE
        )
    ]


def shared_control_plane_files(cluster: Cluster) -> dict[str, bytes]:
    """The files ``kubeadm init phase upload-certs`` transfers, by pki-relative path.

    ca, front-proxy-ca and sa always; the etcd CA only with stacked etcd, as kubeadm does.
    """
    cas = ensure_cluster_cas(cluster)
    sa = service_account_key(cluster)
    files: dict[str, bytes] = {}
    names = [CAName.CA, CAName.FRONT_PROXY]
    if cluster.etcd_topology == kubeadm.TOPOLOGY_STACKED:
        names.append(CAName.ETCD)
    for name in names:
        ca = cas[name]
        files[f"{name}.crt"] = ca.certificate_pem.encode()
        files[f"{name}.key"] = ca.private_key_pem.encode()
    files["sa.key"] = sa.private_key_pem.encode()
    files["sa.pub"] = sa.public_key_pem.encode()
    return files


# --------------------------------------------------------------------------- issuing


@dataclass
class IssueResult:
    """What an issue call wrote, and kubeadm's warnings (dropped certSANs, say)."""

    created: list[Certificate]
    warnings: list[str] = field(default_factory=list)


def _nodes_by_name(cluster: Cluster) -> dict[str, Node]:
    return {n.name: n for n in cluster.nodes.all()}


def active_tree(cluster: Cluster) -> dict[tuple[str, str | None], Certificate]:
    """The active kubeadm files of the cluster keyed like the plan: (name, node or None)."""
    return {
        (c.name, c.node_name or None): c
        for c in Certificate.objects.tree().filter(cluster=cluster).select_related("authority")
    }


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


def _sign_specs(
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
    return _store_leaf(
        cluster,
        cas[spec.signer or ""],
        cert,
        key,
        name=spec.name,
        node=nodes.get(spec.node or ""),
        node_name=spec.node or "",
        usages=spec.usages,
    )


def issue_missing(cluster: Cluster) -> IssueResult:
    """Issue every file of the current plan that has no active certificate yet.

    Idempotent: a second call finds nothing missing and writes nothing. CAs and the ``sa`` key
    pair are created on the first call and reused afterwards.
    """
    the_plan = current_plan(cluster)
    with transaction.atomic():
        cas = ensure_cluster_cas(cluster)
        existing = active_tree(cluster)
        missing = [s for s in the_plan.specs if not s.is_ca and s.key not in existing]
        nodes = _nodes_by_name(cluster)
        created = [
            _store_spec(cluster, cas, nodes, spec, cert, key)
            for spec, cert, key in _sign_specs(cluster, cas, missing)
        ]
    return IssueResult(created, the_plan.warnings)


# --------------------------------------------------------------------------- coverage


@dataclass
class StaleCertificate:
    """An active certificate that no longer covers the SANs its file needs."""

    certificate: Certificate
    missing_sans: list[str]
    spec: CertSpec


@dataclass
class CoverageReport:
    """How the stored tree compares with the current topology."""

    stale: list[StaleCertificate]
    missing: list[CertSpec]
    orphaned: list[Certificate]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.stale and not self.missing


def coverage(cluster: Cluster) -> CoverageReport:
    """Which files are missing, which no longer cover the topology's names, which are orphans."""
    the_plan = current_plan(cluster)
    existing = active_tree(cluster)
    stale, missing = [], []
    for spec in the_plan.specs:
        if spec.is_ca:
            continue
        row = existing.pop(spec.key, None)
        if row is None:
            missing.append(spec)
            continue
        gaps = kubeadm.covers(row.certificate, spec)
        if gaps:
            stale.append(StaleCertificate(row, gaps, spec))
    return CoverageReport(stale, missing, list(existing.values()), the_plan.warnings)


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
    new = _store_leaf(
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


def reissue(cluster: Cluster, ids: Sequence[int] | None = None) -> list[Certificate]:
    """Re-sign the certificates that no longer cover the topology (or the chosen tree files).

    New keys, same CAs and ``sa`` keys, current SANs; the old rows become ``superseded``.
    """
    the_plan = current_plan(cluster)
    with transaction.atomic():
        _lock(cluster)
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
        signed = _sign_specs(cluster, cas, [spec for _, spec in targets])
        return [
            _replace(cluster, row, cas[spec.signer or ""], spec, cert, key)
            for (row, _), (spec, cert, key) in zip(targets, signed, strict=True)
        ]


# --------------------------------------------------------------------------- renewal


def _usages_of(cert: x509.Certificate) -> tuple[str, ...]:
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


def _spec_of(row: Certificate, validity: dt.timedelta) -> CertSpec:
    """The spec a stored certificate was made from: same subject, SANs and usages."""
    return CertSpec(
        name=row.name,
        signer=row.authority.name,
        common_name=row.common_name,
        organizations=tuple(row.organizations),
        dns_names=tuple(row.dns_names),
        ip_addresses=tuple(row.ip_addresses),
        usages=tuple(row.usages) or _usages_of(row.certificate),
        node=row.node_name or None,
        validity=validity,
    )


def renew(
    cluster: Cluster,
    ids: Sequence[int] | None = None,
    *,
    reuse_key: bool = False,
    validity_days: int | None = None,
) -> list[Certificate]:
    """Renew leaf certificates like ``kubeadm certs renew``: same subject and SANs, new serial
    and validity, a new key unless ``reuse_key``. CAs are never renewed here.
    """
    days = validity_days or cluster.certificate_validity_days
    if days < 1:
        raise PKIInputError("the validity must be at least one day", "validity_days")
    with transaction.atomic():
        _lock(cluster)
        cas = active_cas(cluster)
        rows = {
            c.pk: c
            for c in Certificate.objects.active()
            .filter(cluster=cluster, kind__in=[CertificateKind.KUBEADM, CertificateKind.USER])
            .select_related("authority", "node")
        }
        targets = _selected(rows, ids, "certificates")
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
        specs = [_spec_of(r, dt.timedelta(days=days)) for r in targets]
        keys = [r.private_key if reuse_key else None for r in targets]
        signed = _sign_specs(cluster, cas, specs, keys, field_name="validity_days")
        return [
            _replace(cluster, row, cas[spec.signer or ""], spec, cert, key)
            for row, (spec, cert, key) in zip(targets, signed, strict=True)
        ]


# --------------------------------------------------------------------------- SAN checks


def check_san(certificate: Certificate | CertificateAuthority, host: str) -> HostCheck:
    """Would kubectl accept ``certificate`` for ``host``? Go's error text and the SAN to add."""
    host = host.strip()
    if not host:
        raise PKIInputError("give a host name or IP address", "host")
    if len(host) > 253:
        raise PKIInputError("a host name has at most 253 characters", "host")
    return check_host(certificate.certificate, host)


def endpoint_checks(cluster: Cluster) -> list[dict[str, Any]]:
    """Every name clients use to reach the API, checked against every active apiserver cert."""
    spec = cluster_spec(cluster)
    names = [cluster.endpoint_host] if cluster.control_plane_endpoint else []
    names += [
        kubeadm.first_service_ip(spec.service_subnet),
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
        *spec.extra_sans,
    ]
    results = []
    for row in Certificate.objects.tree().filter(cluster=cluster, name="apiserver"):
        node_names = [row.node.address] if row.node is not None else []
        for host in dict.fromkeys([*names, *map(str, node_names)]):
            outcome = check_host(row.certificate, host)
            results.append(
                {
                    "certificate": row.pk,
                    "node": row.node_name,
                    "host": host,
                    "covered": outcome.covered,
                    "message": outcome.message,
                    "san_to_add": outcome.san_to_add,
                }
            )
    return results


# --------------------------------------------------------------------------- expiry


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
    for node in cluster.nodes.filter(role="control-plane").order_by("name"):
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


# --------------------------------------------------------------------------- downloads


def _ca_spec(ca: CertificateAuthority) -> CertSpec:
    return CertSpec(ca.name, None, ca.common_name, is_ca=True)


def _stored_tree(cluster: Cluster) -> kubeadm.IssuedTree:
    """The stored CAs, active files and ``sa`` key as the pure module's ``IssuedTree``."""
    cas = {
        name: kubeadm.Issued(_ca_spec(ca), ca.certificate, ca.private_key)
        for name, ca in active_cas(cluster).items()
    }
    validity = dt.timedelta(days=cluster.certificate_validity_days)
    leaves = {
        key: kubeadm.Issued(_spec_of(row, validity), row.certificate, row.private_key)
        for key, row in active_tree(cluster).items()
    }
    return kubeadm.IssuedTree(
        cas=cas, leaves=leaves, sa_key=service_account_key(cluster).private_key
    )


def node_bundle_files(
    cluster: Cluster, node: Node, *, include_super_admin: bool = True
) -> dict[str, kubeadm.NodeFile]:
    """The node's ``/etc/kubernetes`` files from the stored PKI (PKIInputError if incomplete)."""
    spec = cluster_spec(cluster)
    current_plan(cluster)  # an impossible topology is reported before anything else
    try:
        files = kubeadm.node_files(spec, _stored_tree(cluster), node_spec(node))
    except (PKIError, KeyError) as exc:
        raise PKIInputError(
            f"the node's certificates are not all issued ({exc}); issue the missing "
            "certificates first",
            "node",
        ) from None
    if not include_super_admin:
        files.pop("super-admin.conf", None)
    return files


def build_bundle(cluster: Cluster, node: Node, *, include_super_admin: bool = True) -> bytes:
    """A tar.gz laid out as ``/etc/kubernetes`` on ``node``: keys 0600, certificates 0644."""
    files = node_bundle_files(cluster, node, include_super_admin=include_super_admin)
    now = int(time.time())
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=now) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        directories = sorted(
            {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
        )
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for path in sorted(files):
            node_file = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(node_file.content), node_file.mode, now
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(node_file.content))
    return buffer.getvalue()


_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:+-]{0,47}")
_GROUP = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._:+/-]{0,99}")
FORBIDDEN_GROUPS = (kubeadm.MASTERS_GROUP,)


def user_kubeconfig(
    cluster: Cluster, username: str, groups: Sequence[str], validity_days: int
) -> tuple[str, Certificate]:
    """A kubeconfig for ``username`` with its own client certificate in ``groups``.

    Like ``kubeadm kubeconfig user --client-name``. ``system:masters`` bypasses RBAC entirely
    and is refused: that identity exists only as ``super-admin.conf``.
    """
    if not _USERNAME.fullmatch(username or ""):
        raise PKIInputError(
            "a user name is 1-48 characters: letters, digits and @ . _ : + -", "username"
        )
    for group in groups:
        if group.strip().lower() in FORBIDDEN_GROUPS:
            raise PKIInputError(
                "system:masters bypasses RBAC and is never given to users; bind a role to the "
                "user or one of its groups instead",
                "groups",
            )
        if not _GROUP.fullmatch(group):
            raise PKIInputError(f"{group!r} is not a valid group name", "groups")
    if validity_days < 1:
        raise PKIInputError("the validity must be at least one day", "validity")
    spec = CertSpec(
        name=f"user:{username}",
        signer=kubeadm.CA,
        common_name=username,
        organizations=tuple(dict.fromkeys(groups)),
        usages=(USAGE_CLIENT,),
        validity=dt.timedelta(days=validity_days),
    )
    with transaction.atomic():
        cas = ensure_cluster_cas(cluster)
        ((_, cert, key),) = _sign_specs(cluster, cas, [spec], field_name="validity")
        row = _store_leaf(
            cluster,
            cas[kubeadm.CA],
            cert,
            key,
            name=spec.name,
            kind=CertificateKind.USER,
            usages=spec.usages,
        )
    server = "https://" + kubeadm.join_host_port(cluster.endpoint_host, cluster.endpoint_port)
    text = kubeconfig.render_kubeconfig(
        cluster_name=cluster.cluster_name,
        server=server,
        ca_cert_pem=cas[kubeadm.CA].certificate_pem.encode(),
        client_cert_pem=certificate_to_pem(cert),
        client_key_pem=private_key_to_pem(key),
        user=username,
    )
    return text, row


# --------------------------------------------------------------------------- imports


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
    if size is not None and size < 2048:
        return f"is RSA {size}; RSA keys must have at least 2048 bits"
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
    return _store_ca(cluster, name, cert, key, source), retired


_SHARED_LEAVES = (
    "apiserver-kubelet-client",
    "front-proxy-client",
    "apiserver-etcd-client",
    "etcd/healthcheck-client",
)
_PER_NODE_LEAVES = ("apiserver", "etcd/server", "etcd/peer")


def import_kubeadm_archive(cluster: Cluster, data: bytes, node: Node | None = None) -> ImportResult:
    """Take over an existing kubeadm PKI from a tar/zip of ``/etc/kubernetes`` or ``pki/``.

    Every file is checked first (``pki.importer``); any problem refuses the whole upload with the
    problems listed per file, and nothing is stored. On success the CAs and ``sa`` keys become the
    cluster's (keeping their fingerprints), as do the shared leaf certificates and, when ``node``
    names the control-plane node the tree came from, its per-node ones. Certificates signed by a
    replaced CA are superseded.
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
        _lock(cluster)
        authorities, superseded = [], 0
        for name, (cert, key) in report.cas.items():
            ca, retired = _adopt_ca(cluster, name, cert, key, CASource.KUBEADM)
            authorities.append(ca)
            superseded += retired
        if report.service_account is not None:
            _store_sa_key(cluster, report.service_account[0])
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
                _store_leaf(
                    cluster,
                    cas[importer.LEAF_SIGNERS[name]],
                    cert,
                    key,
                    name=name,
                    node=node if node_name else None,
                    usages=_usages_of(cert),
                )
            )
    return ImportResult(authorities, certificates, superseded, notes)


_CFSSL_FIELDS = (("ca-key.pem", "ca_key_pem"), ("ca.pem", "ca_pem"))


def import_cfssl_ca(
    cluster: Cluster, ca_pem: bytes, ca_key_pem: bytes, name: str = CAName.CA
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
        _lock(cluster)
        ca, retired = _adopt_ca(cluster, name, cert, key, CASource.CFSSL)
    return ImportResult([ca], [], retired, [])


def create_ca_from_cfssl_csr(
    cluster: Cluster, csr_json: str | bytes, name: str = CAName.CA
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
        _lock(cluster)
        ca, retired = _adopt_ca(cluster, name, cert, key, CASource.CFSSL_CSR)
    return ImportResult([ca], [], retired, [])


def cfssl_sign(
    cluster: Cluster,
    ca_config: str | bytes,
    profile: str,
    *,
    csr_json: str | bytes | None = None,
    csr_pem: bytes | None = None,
    authority: str = CAName.CA,
) -> Certificate:
    """Sign a cfssl CSR JSON (new key, kept encrypted) or a PKCS#10 CSR with a named profile."""
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
    key: PrivateKey | None = None
    try:
        if csr_json is not None:
            request = cfssl.parse_csr(csr_json)
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
        raise PKIInputError(message, "csr_json" if csr_json is not None else "csr_pem") from None
    name = f"cfssl:{ca_cert_common_name(cert) or 'unnamed'}"[:64]
    with transaction.atomic():
        return _store_leaf(
            cluster, ca, cert, key, name=name, kind=CertificateKind.CFSSL, usages=chosen.usages
        )


# --------------------------------------------------------------------------- inspection


def inspect_stored(row: Certificate | CertificateAuthority) -> dict[str, Any]:
    """Everything ``pki.inspect`` reports about a stored certificate."""
    return inspect_mod.inspect_certificate(row.certificate, timezone.now())


def inspect_upload(data: bytes) -> list[dict[str, Any]]:
    """Inspect every certificate of an uploaded PEM/DER (PKIInputError on ``pem``)."""
    try:
        return inspect_mod.inspect_pem(data)
    except PKIError as exc:
        raise PKIInputError(str(exc), "pem") from None
