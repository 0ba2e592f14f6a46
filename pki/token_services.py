"""Django glue for bootstrap tokens, join commands, kubeadm configuration and static tokens.

The rules live in the pure modules (``pki.tokens``, ``pki.join``, ``pki.upload_certs``,
``pki.kubeadm_config``, ``pki.static_tokens``, ``nodes.loadbalancer``); this module reads the
models, calls those modules and turns their errors into Django ``ValidationError``s keyed by the
field the user typed, so the API answers 400 naming the field and forms re-show with the error.
Views call these functions and add the audit event; nothing here writes to the audit log, so that
the caller decides what the user did (a reveal, a download) and records it once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from nodes import loadbalancer
from nodes.models import Cluster, EtcdTopology, Node, NodeRole
from pki import join as join_rules
from pki import kubeadm_config, upload_certs
from pki import static_tokens as static_rules
from pki import tokens as token_rules
from pki.audit_policy import AuditPolicyError, validate_audit_policy
from pki.models.tokens import BootstrapToken, CertificateKey, ClusterKubeadmSettings, StaticToken
from pki.x509 import spki_sha256

# A join takes minutes, but a command copied now may be pasted later: never hand out a token
# that is about to expire.
MIN_JOIN_TOKEN_LIFETIME = timedelta(hours=1)
# kubeadm deletes kubeadm-certs two hours after the upload; the same margin applies to the key.
CERTIFICATE_KEY_TTL = upload_certs.CERTS_TOKEN_TTL
MIN_CERTIFICATE_KEY_LIFETIME = timedelta(hours=1)
# Debian and Ubuntu build nginx's stream module as a dynamic module (libnginx-mod-stream).
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
EXTRA_ARG_COMPONENTS: tuple[str, ...] = (
    "apiserver_extra_args",
    "controller_manager_extra_args",
    "scheduler_extra_args",
    "etcd_extra_args",
    "kubelet_extra_args",
)
ROLES = ("worker", "control-plane")

# Messages of the pure modules start with the field they are about; map those to form fields.
_TOKEN_FIELDS = {
    "token id": "token",
    "token secret": "token",
    "token": "token",
    "ttl": "ttl",
    "usages": "usages",
    "groups": "groups",
    "description": "description",
}


class JoinUnavailable(Exception):
    """The cluster cannot produce a join command now (no usable token, no CA yet)."""


def _field_error(error: ValueError, fields: Mapping[str, str], default: str) -> ValidationError:
    """Turn ``"groups: 'x' must match ..."`` into ``ValidationError({"groups": [...]})``."""
    message = str(error)
    prefix, sep, rest = message.partition(": ")
    name = fields.get(prefix) if sep else None
    return ValidationError({name or default: [rest if name else message]})


# --- bootstrap tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """Validated input for a new bootstrap token."""

    ttl: timedelta
    usages: tuple[str, ...]
    groups: tuple[str, ...]
    description: str
    token: token_rules.BootstrapToken | None = field(default=None, repr=False)


def validate_token_request(
    *,
    ttl: str | int | timedelta | None = None,
    usages: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
    description: str = "",
    token: str | None = None,
) -> TokenRequest:
    """Check every field and report all bad ones at once, keyed by field name."""
    errors: dict[str, list[str]] = {}

    def attempt(name: str, check: Any) -> Any:
        try:
            return check()
        except (token_rules.TokenError, TypeError) as error:
            prefix, sep, rest = str(error).partition(": ")
            errors.setdefault(name, []).append(
                rest if sep and prefix in _TOKEN_FIELDS else str(error)
            )
            return None

    parsed_ttl = attempt(
        "ttl", lambda: token_rules.parse_ttl(token_rules.DEFAULT_TTL if ttl is None else ttl)
    )
    if isinstance(usages, str) or isinstance(groups, str):
        # A bare string would be read character by character.
        for name, value in (("usages", usages), ("groups", groups)):
            if isinstance(value, str):
                errors.setdefault(name, []).append("must be a list of strings")
    parsed_usages = attempt(
        "usages",
        lambda: token_rules.validate_usages(
            token_rules.DEFAULT_USAGES if usages is None else list(usages)
        ),
    )
    parsed_groups = attempt(
        "groups",
        lambda: token_rules.validate_groups(
            token_rules.DEFAULT_GROUPS if groups is None else list(groups)
        ),
    )
    parsed_description = attempt(
        "description", lambda: token_rules.validate_description(description)
    )
    if parsed_description is not None and len(parsed_description) > 255:
        errors.setdefault("description", []).append("must be at most 255 characters")
    parsed_token = None
    if token:
        parsed_token = attempt("token", lambda: token_rules.parse_token(token))
    if parsed_groups and parsed_usages is not None and "authentication" not in parsed_usages:
        # kubeadm refuses the same: groups only matter to a token that authenticates.
        errors.setdefault("groups", []).append(
            'extra groups need the "authentication" usage; remove the groups or add the usage'
        )
    if errors:
        raise ValidationError(errors)
    return TokenRequest(
        ttl=parsed_ttl,
        usages=parsed_usages,
        groups=parsed_groups,
        description=parsed_description,
        token=parsed_token,
    )


def create_token(
    cluster: Cluster,
    request: TokenRequest,
    *,
    user: Any = None,
    now: datetime | None = None,
) -> BootstrapToken:
    """Store a new bootstrap token; a given token id must not exist in the cluster yet."""
    now = now or timezone.now()
    expires_at = token_rules.expiry_for(request.ttl, now)
    with transaction.atomic():
        if request.token is not None:
            if cluster.bootstrap_tokens.filter(token_id=request.token.id).exists():
                raise ValidationError(
                    {"token": [f"a token with id {request.token.id} already exists in {cluster}"]}
                )
            value = request.token
        else:
            value = token_rules.generate_token()
            # 36**6 ids: a clash is rare but possible, and the id must be unique.
            while cluster.bootstrap_tokens.filter(token_id=value.id).exists():
                value = token_rules.generate_token()
        try:
            with transaction.atomic():
                return BootstrapToken.objects.create(
                    cluster=cluster,
                    token_id=value.id,
                    secret=value.secret,
                    description=request.description,
                    usages=list(request.usages),
                    groups=list(request.groups),
                    ttl=request.ttl,
                    created_at=now,
                    expires_at=expires_at,
                    created_by=user if getattr(user, "pk", None) else None,
                )
        except IntegrityError:
            raise ValidationError(
                {"token": [f"a token with id {value.id} already exists in {cluster}"]}
            ) from None


def secret_manifest(token: BootstrapToken) -> str:
    """The ``kube-system/bootstrap-token-<id>`` Secret for a stored token (holds the secret)."""
    return token_rules.render_secret_manifest(
        token.value, token.expires_at, token.usages, token.groups, token.description
    )


def token_create_command(token: BootstrapToken, now: datetime | None = None) -> str:
    """``kubeadm token create`` for the same token; the TTL is what is left of it now, so the
    token made in the cluster expires when the panel's record does."""
    if token.expires_at is None:
        ttl = timedelta(0)
    else:
        # Whole seconds, rounded up: kubeadm's expiry then lands on or just after ours.
        left = token.expires_at - (now or timezone.now())
        ttl = timedelta(seconds=max(1, int(left.total_seconds() + 0.999)))
    return token_rules.kubeadm_token_create_command(
        token.value, ttl, token.usages, token.groups, token.description
    )


def usable_join_token(cluster: Cluster, now: datetime | None = None) -> BootstrapToken | None:
    """The token a join command uses: not revoked, at least an hour left, fit for joining.

    Of several, the one with the most time left; a never-expiring token only when no
    time-limited one will do, so that commands carry the shortest-lived credential that works.
    """
    now = now or timezone.now()
    candidates = cluster.bootstrap_tokens.filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=now + MIN_JOIN_TOKEN_LIFETIME)
    )
    fit = [token for token in candidates if token.can_join()]
    expiring = [token for token in fit if token.expires_at is not None]
    if expiring:
        return max(expiring, key=lambda token: (token.expires_at, token.pk))
    return fit[0] if fit else None


def _join_token(
    cluster: Cluster, new_token: bool, user: Any, now: datetime
) -> tuple[BootstrapToken, bool]:
    if new_token:
        request = validate_token_request(description="join command")
        return create_token(cluster, request, user=user, now=now), True
    token = usable_join_token(cluster, now)
    if token is None:
        raise JoinUnavailable(
            f"Cluster {cluster.name} has no valid bootstrap token with at least 1 hour left "
            "(tokens that are revoked, expired, about to expire, or lack the signing and "
            "authentication usages are not used). Create a token, or ask for a new one "
            "with new_token=1."
        )
    return token, False


def ca_cert_hashes(cluster: Cluster) -> list[str]:
    """One discovery hash per cluster CA certificate, as kubeadm prints them."""
    from pki import services  # the certificate store; imported late to keep this module light

    certificates = services.ca_certificates(cluster)
    if not certificates:
        raise JoinUnavailable(
            f"Cluster {cluster.name} has no cluster CA yet: create the certificates first."
        )
    hashes: list[str] = []
    for certificate in certificates:
        value = spki_sha256(certificate)
        if value not in hashes:
            hashes.append(value)
    return hashes


def current_certificate_key(
    cluster: Cluster, *, user: Any = None, now: datetime | None = None
) -> CertificateKey:
    """A certificate key with at least an hour left, made if there is none."""
    now = now or timezone.now()
    key = (
        cluster.certificate_keys.filter(expires_at__gte=now + MIN_CERTIFICATE_KEY_LIFETIME)
        .order_by("-expires_at", "-id")
        .first()
    )
    if key is not None:
        return key
    return CertificateKey.objects.create(
        cluster=cluster,
        key=join_rules.generate_certificate_key(),
        created_at=now,
        expires_at=now + CERTIFICATE_KEY_TTL,
        created_by=user if getattr(user, "pk", None) else None,
    )


@dataclass(frozen=True)
class JoinCommand:
    """A rendered join command and what it reveals (the caller audits showing it)."""

    role: str
    command: str = field(repr=False)
    one_line: str = field(repr=False)
    token: BootstrapToken
    certificate_key: CertificateKey | None
    token_created: bool

    def as_dict(self) -> dict[str, Any]:
        key = self.certificate_key
        return {
            "command": self.command,
            "one_line": self.one_line,
            "token_id": self.token.token_id,
            "token_expires_at": self.token.expires_at,
            "certificate_key": key.key if key else None,
            "certificate_key_expires_at": key.expires_at if key else None,
        }


def validate_role(role: str | None) -> str:
    value = role or "worker"
    if value not in ROLES:
        raise ValidationError({"role": [f"must be one of {', '.join(ROLES)}, not {value!r}"]})
    return value


def join_command(
    cluster: Cluster,
    role: str = "worker",
    *,
    new_token: bool = False,
    user: Any = None,
    now: datetime | None = None,
) -> JoinCommand:
    """The ``kubeadm join`` command for a worker or a control-plane node, in kubeadm's format.

    Raises :class:`JoinUnavailable` when there is no usable token (and none was asked for) or no
    cluster CA yet.
    """
    now = now or timezone.now()
    role = validate_role(role)
    hashes = ca_cert_hashes(cluster)
    with transaction.atomic():
        token, created = _join_token(cluster, new_token, user, now)
        key = current_certificate_key(cluster, user=user, now=now) if role != "worker" else None
    arguments: dict[str, Any] = {
        "endpoint": cluster.normalized_endpoint,
        "token": token.value,
        "ca_cert_hashes": hashes,
        "control_plane": role == "control-plane",
        "certificate_key": key.key if key else None,
    }
    return JoinCommand(
        role=role,
        command=join_rules.format_join_command(**arguments),
        one_line=join_rules.format_join_command(**arguments, one_line=True),
        token=token,
        certificate_key=key,
        token_created=created,
    )


# --- kubeadm-certs -------------------------------------------------------------------------------


def _external_etcd_files(cluster: Cluster) -> dict[str, bytes]:
    """With external etcd kubeadm uploads the files named by ``etcd.external`` under fixed
    names; in the panel's tree those are the etcd CA and the apiserver's etcd client pair."""
    from pki import services

    ca = services.active_cas(cluster).get("etcd/ca")
    client = services.active_tree(cluster).get(("apiserver-etcd-client", None))
    if ca is None or client is None:
        raise JoinUnavailable(
            f"Cluster {cluster.name} uses external etcd and has no apiserver-etcd-client "
            "certificate yet: issue the certificates first."
        )
    return {
        "external-etcd-ca.crt": ca.certificate_pem.encode(),
        "external-etcd.crt": client.certificate_pem.encode(),
        "external-etcd.key": client.private_key_pem.encode(),
    }


def _files_to_upload(cluster: Cluster) -> tuple[dict[str, bytes], bool]:
    from pki import services

    external = cluster.etcd_topology == EtcdTopology.EXTERNAL
    available = services.shared_control_plane_files(cluster)
    files = {
        name: available[name]
        for name in upload_certs.certs_to_transfer(external)
        if name in available
    }
    if external:
        files.update(_external_etcd_files(cluster))
    return files, external


def kubeadm_certs_manifest(
    cluster: Cluster, *, user: Any = None, now: datetime | None = None
) -> tuple[str, CertificateKey]:
    """The ``kube-system/kubeadm-certs`` Secret that ``kubeadm init phase upload-certs`` would
    store, encrypted with the cluster's current certificate key (made if needed)."""
    now = now or timezone.now()
    files, external = _files_to_upload(cluster)
    key = current_certificate_key(cluster, user=user, now=now)
    try:
        payload = upload_certs.build_payload(files, key.key, external_etcd=external)
    except upload_certs.UploadCertsError as error:
        raise JoinUnavailable(f"Cannot build kubeadm-certs for {cluster.name}: {error}") from None
    expires = token_rules.format_expiration(key.expires_at)
    header = (
        "# kube-system/kubeadm-certs as `kubeadm init phase upload-certs --upload-certs` stores"
        " it.\n"
        f"# Encrypted with the certificate key that expires at {expires}; delete the Secret"
        " after that\n"
        "# (kubeadm lets its two-hour owner token remove it).\n"
    )
    return header + upload_certs.render_secret(payload), key


# --- kubeadm settings and configuration ----------------------------------------------------------


def settings_for(cluster: Cluster) -> ClusterKubeadmSettings:
    """The cluster's kubeadm settings; defaults (unsaved) when none were stored yet."""
    try:
        return cluster.kubeadm_settings
    except ClusterKubeadmSettings.DoesNotExist:
        return ClusterKubeadmSettings(cluster=cluster)


_SETTINGS_WHERE = {
    "apiserver_extra_args": "apiServer.extraArgs",
    "controller_manager_extra_args": "controllerManager.extraArgs",
    "scheduler_extra_args": "scheduler.extraArgs",
    "etcd_extra_args": "etcd.local.extraArgs",
    "kubelet_extra_args": "nodeRegistration.kubeletExtraArgs",
}


def validate_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check extra args (flag names ``[a-z0-9-]+``, single-line values) and the audit policy."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in EXTRA_ARG_COMPONENTS:
        if name not in values:
            continue
        try:
            cleaned[name] = kubeadm_config.validate_extra_args(
                values[name] or {}, _SETTINGS_WHERE[name]
            )
        except kubeadm_config.ConfigError as error:
            errors.setdefault(name, []).append(str(error))
    if "audit_policy" in values:
        try:
            validate_audit_policy(values["audit_policy"])
            cleaned["audit_policy"] = values["audit_policy"]
        except AuditPolicyError as error:
            errors.setdefault("audit_policy", []).append(str(error))
    if "audit_enabled" in values:
        cleaned["audit_enabled"] = bool(values["audit_enabled"])
    if cleaned.get("audit_enabled", True):
        audit_flags = {"audit-policy-file", "audit-log-path"} | {
            f"audit-log-{suffix}" for suffix in ("maxage", "maxbackup", "maxsize")
        }
        clash = sorted(audit_flags & set(cleaned.get("apiserver_extra_args", {})))
        if clash:
            errors.setdefault("apiserver_extra_args", []).append(
                f"flag {clash[0]!r} is set by the audit log settings; turn audit off to set it"
            )
    if errors:
        raise ValidationError(errors)
    return cleaned


def save_settings(cluster: Cluster, values: Mapping[str, Any]) -> ClusterKubeadmSettings:
    """Validate and store (all or nothing) the given settings; others keep their value."""
    cleaned = validate_settings(values)
    with transaction.atomic():
        current = settings_for(cluster)
        for name, value in cleaned.items():
            setattr(current, name, value)
        current.save()
    return current


def _taints(node: Node) -> tuple[kubeadm_config.Taint, ...] | None:
    """The node's taints; none stored means kubeadm's default for the role."""
    if not node.taints:
        return None
    result = []
    for text in node.taints:
        spec, _, effect = text.strip().rpartition(":")
        key, _, value = spec.partition("=")
        result.append(kubeadm_config.Taint(key, effect, value or None))
    return tuple(result)


def _etcd_endpoint(address: str) -> str:
    ip = ipaddress.ip_address(address)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"https://{host}:2379"


def cluster_config_input(cluster: Cluster) -> kubeadm_config.ClusterConfigInput:
    """The ClusterConfiguration inputs from the inventory and the kubeadm settings."""
    stored = settings_for(cluster)
    etcd: kubeadm_config.LocalEtcd | kubeadm_config.ExternalEtcd
    if cluster.etcd_topology == EtcdTopology.EXTERNAL:
        members = cluster.nodes.filter(role=NodeRole.ETCD).order_by("pk")
        etcd = kubeadm_config.ExternalEtcd(
            endpoints=tuple(_etcd_endpoint(node.address) for node in members),
            ca_file="/etc/kubernetes/pki/etcd/ca.crt",
            cert_file="/etc/kubernetes/pki/apiserver-etcd-client.crt",
            key_file="/etc/kubernetes/pki/apiserver-etcd-client.key",
        )
    else:
        etcd = kubeadm_config.LocalEtcd(extra_args=dict(stored.etcd_extra_args))
    return kubeadm_config.ClusterConfigInput(
        kubernetes_version=cluster.kubernetes_version,
        control_plane_endpoint=cluster.normalized_endpoint,
        cluster_name=cluster.cluster_name,
        service_subnet=cluster.service_subnet,
        pod_subnet=cluster.pod_subnet or None,
        dns_domain=cluster.dns_domain,
        etcd=etcd,
        apiserver_cert_sans=tuple(cluster.extra_sans or ()),
        apiserver_extra_args=dict(stored.apiserver_extra_args),
        controller_manager_extra_args=dict(stored.controller_manager_extra_args),
        scheduler_extra_args=dict(stored.scheduler_extra_args),
        encryption_algorithm=cluster.key_algorithm,
        certificate_validity=timedelta(days=cluster.certificate_validity_days),
        ca_certificate_validity=timedelta(days=cluster.ca_validity_days),
        audit=(
            kubeadm_config.AuditLogConfig(policy=stored.audit_policy)
            if stored.audit_enabled
            else None
        ),
    )


def init_node(cluster: Cluster) -> Node | None:
    """The node that runs ``kubeadm init``: the first control-plane node added."""
    return cluster.nodes.filter(role=NodeRole.CONTROL_PLANE).order_by("pk").first()


@dataclass(frozen=True)
class KubeadmConfig:
    """A rendered kubeadm configuration file and the secrets it carries."""

    text: str = field(repr=False)
    kind: str  # "init" or "join"
    token: BootstrapToken | None
    certificate_key: CertificateKey | None
    token_created: bool


def kubeadm_config_for(
    cluster: Cluster,
    node: Node,
    *,
    new_token: bool = False,
    user: Any = None,
    now: datetime | None = None,
) -> KubeadmConfig:
    """``kubeadm init --config`` for the first control-plane node, ``kubeadm join --config``
    for the others.

    The init file carries a usable join token (so that the token kubeadm creates is one the
    panel knows, and later join commands work) and the certificate key for ``--upload-certs``.
    """
    now = now or timezone.now()
    if node.cluster_id != cluster.pk:
        raise ValidationError({"node": [f"node {node.name} is not in cluster {cluster.name}"]})
    if node.role == NodeRole.ETCD:
        raise ValidationError(
            {"node": [f"{node.name} is an external etcd member; kubeadm does not join it"]}
        )
    stored = settings_for(cluster)
    control_plane = node.role == NodeRole.CONTROL_PLANE
    registration = kubeadm_config.NodeConfigInput(
        name=node.name,
        advertise_address=str(node.address),
        control_plane=control_plane,
        cri=cluster.container_runtime,  # type: ignore[arg-type]
        taints=_taints(node),
        kubelet_extra_args=dict(stored.kubelet_extra_args),
    )
    first = init_node(cluster)
    is_init = first is not None and first.pk == node.pk
    with transaction.atomic():
        token: BootstrapToken | None
        if is_init:
            token = usable_join_token(cluster, now)
            created = False
            if token is None or new_token:
                token, created = _join_token(cluster, True, user, now)
        else:
            token, created = _join_token(cluster, new_token, user, now)
        key = current_certificate_key(cluster, user=user, now=now) if control_plane else None
    try:
        if is_init:
            left = token.time_left(now)
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster),
                registration,
                None,
                bootstrap_token=token.value,
                bootstrap_token_ttl=timedelta(0)
                if left is None
                else timedelta(seconds=int(left.total_seconds())),
                certificate_key=key.key if key else None,
            )
        else:
            join = kubeadm_config.JoinInput(
                api_server_endpoint=cluster.normalized_endpoint,
                token=token.value,
                ca_cert_hashes=tuple(ca_cert_hashes(cluster)),
                certificate_key=key.key if key else None,
            )
            text = kubeadm_config.render_kubeadm_config(
                cluster_config_input(cluster), registration, join
            )
    except kubeadm_config.ConfigError as error:
        raise ValidationError({"config": [str(error)]}) from None
    return KubeadmConfig(text, "init" if is_init else "join", token, key, created)


def cluster_configuration_preview(cluster: Cluster) -> str:
    """The ClusterConfiguration alone (no secrets), for the configuration page."""
    try:
        document = kubeadm_config.render_cluster_configuration(cluster_config_input(cluster))
    except kubeadm_config.ConfigError as error:
        raise ValidationError({"config": [str(error)]}) from None
    from pki.yaml_dump import dump_document

    return dump_document(document)


def audit_policy_text(cluster: Cluster) -> str:
    return settings_for(cluster).audit_policy


# --- load balancer -------------------------------------------------------------------------------


def _backend_name(node: Node) -> str:
    # Backend names must be DNS labels; node names may be dotted subdomains.
    return node.name.replace(".", "-")[:63].strip("-")


def load_balancer_config(cluster: Cluster, kind: str) -> str:
    """nginx (``stream``) or haproxy configuration over the cluster's control-plane nodes."""
    nodes = cluster.nodes.filter(role=NodeRole.CONTROL_PLANE).order_by("name")
    backends = [(_backend_name(node), str(node.address), 6443) for node in nodes]
    try:
        if kind == "nginx":
            return loadbalancer.render_nginx_stream(
                cluster.name,
                backends,
                cluster.endpoint_port,
                stream_module_path=NGINX_STREAM_MODULE,
            )
        if kind == "haproxy":
            return loadbalancer.render_haproxy(cluster.name, backends, cluster.endpoint_port)
    except loadbalancer.LoadBalancerError as error:
        raise ValidationError({"backends": [str(error)]}) from None
    raise ValidationError({"kind": ["must be nginx or haproxy"]})


# --- static token file ---------------------------------------------------------------------------


def _static_entry(
    token: str, user: str, uid: str, groups: Sequence[str]
) -> static_rules.StaticTokenEntry:
    entry = static_rules.StaticTokenEntry(token, user, uid, tuple(groups))
    try:
        return static_rules.validate_entry(entry)
    except static_rules.StaticTokenError as error:
        raise _field_error(
            error, {"token": "token", "user": "user", "uid": "uid", "groups": "groups"}, "token"
        ) from None


def add_static_token(
    cluster: Cluster, *, token: str, user: str, uid: str = "", groups: Sequence[str] = ()
) -> StaticToken:
    """Add one entry; a token already in the file is refused (the API server would keep only
    the last one, silently)."""
    if isinstance(groups, str):
        raise ValidationError({"groups": ["must be a list of strings"]})
    entry = _static_entry(token, user, uid, groups)
    with transaction.atomic():
        existing = {row.token: row for row in cluster.static_tokens.all()}
        if entry.token in existing:
            raise ValidationError(
                {"token": [f"this token is already used by {existing[entry.token].user}"]}
            )
        return StaticToken.objects.create(
            cluster=cluster,
            token=entry.token,
            user=entry.user,
            uid=entry.uid,
            groups=list(entry.groups),
        )


def render_static_tokens(cluster: Cluster) -> str:
    """``tokens.csv`` for ``--token-auth-file`` (holds every token: audit the download)."""
    entries = [
        static_rules.StaticTokenEntry(row.token, row.user, row.uid, tuple(row.groups))
        for row in cluster.static_tokens.all()
    ]
    return static_rules.render_token_csv(entries)


@dataclass(frozen=True)
class ImportResult:
    """What an import stored, and the warnings the API server would have printed."""

    created: int
    replaced: int
    warnings: list[str]


def import_static_tokens(cluster: Cluster, text: str, *, replace: bool = False) -> ImportResult:
    """Import an existing ``tokens.csv``; nothing is stored unless every line is good.

    Errors (too few columns, CSV syntax, an entry the file cannot hold) are reported by line
    number under ``csv``; duplicates inside the file are reported as warnings (the last row wins,
    as in the API server); a token already stored is an error unless ``replace`` drops the
    stored entries first.
    """
    if not isinstance(text, str):
        raise ValidationError({"csv": ["must be the text of a token file"]})
    entries, problems = static_rules.parse_token_csv(text)
    errors = [str(problem) for problem in problems if problem.severity == "error"]
    warnings = [str(problem) for problem in problems if problem.severity == "warning"]
    for entry in entries:
        try:
            static_rules.validate_entry(entry)
        except static_rules.StaticTokenError as error:
            errors.append(f"line {entry.line}: {error}")
    with transaction.atomic():
        stored = {row.token: row for row in cluster.static_tokens.all()}
        if not replace:
            for entry in entries:
                if entry.token in stored:
                    errors.append(
                        f"line {entry.line}: duplicate of the stored token of "
                        f"{stored[entry.token].user}"
                    )
        if errors:
            raise ValidationError({"csv": sorted(errors, key=_line_number)})
        if not entries:
            raise ValidationError({"csv": ["the file holds no token"]})
        replaced = len(stored) if replace else 0
        if replace:
            cluster.static_tokens.all().delete()
        StaticToken.objects.bulk_create(
            StaticToken(
                cluster=cluster,
                token=entry.token,
                user=entry.user,
                uid=entry.uid,
                groups=list(entry.groups),
            )
            for entry in entries
        )
    return ImportResult(created=len(entries), replaced=replaced, warnings=warnings)


def _line_number(message: str) -> int:
    head = message.removeprefix("line ").split(":", 1)[0]
    return int(head) if head.isdigit() else 0


def parse_groups(text: str) -> list[str]:
    """Groups typed in a form: comma- or newline-separated."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
