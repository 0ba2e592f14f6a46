"""``kubeadm join`` commands: the token, the CA discovery hashes and the certificate key."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import can, require_permission
from nodes.models import Cluster, ClusterFlavor, NodeRole
from pki.domain import join as join_rules
from pki.domain import upload_certs
from pki.domain.x509 import spki_sha256
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services.bootstrap.bootstrap_tokens import (
    create_token,
    usable_join_token,
    validate_token_request,
)
from pki.services.bootstrap.errors import JoinUnavailable, NoCertificateKey, NoUsableToken

# kubeadm deletes kubeadm-certs two hours after the upload; the same margin applies to the key.
CERTIFICATE_KEY_TTL = upload_certs.CERTS_TOKEN_TTL
MIN_CERTIFICATE_KEY_LIFETIME = timedelta(hours=1)
# The two ways to join: the roles a join command is made for.
ROLES: tuple[str, ...] = (NodeRole.WORKER, NodeRole.CONTROL_PLANE)

# The certificate key decrypts the CA keys that kubeadm-certs carries: wherever it is shown, it
# is an admin download. (Jobs will take it from the panel to the host without showing it.)
CONTROL_PLANE_JOIN_REFUSED = (
    "control-plane joins carry the certificate key, which decrypts the CA keys in kubeadm-certs: "
    "they are admin downloads; operators can join workers"
)


def may_see_certificate_key(actor: Actor) -> bool:
    """Whether ``actor`` may be shown a certificate key (control-plane joins, kubeadm-certs)."""
    return can(actor.user, "download_ca_keys")


def require_certificate_key_access(actor: Actor, reason: str = CONTROL_PLANE_JOIN_REFUSED) -> None:
    """Refuse (403, saying ``reason``) an actor who may not be shown a certificate key."""
    require_permission(actor.user, "download_ca_keys", reason)


def require_join_token(cluster: Cluster, now: datetime | None = None) -> BootstrapToken:
    """The usable join token; ``NoUsableToken`` when there is none (none is made)."""
    token = usable_join_token(cluster, now)
    if token is None:
        raise NoUsableToken(
            f"Cluster {cluster.name} has no valid bootstrap token with at least 1 hour left "
            "(tokens that are revoked, expired, about to expire, or lack the signing and "
            "authentication usages are not used)."
        )
    return token


def join_token(
    cluster: Cluster, new_token: bool, actor: Actor, now: datetime
) -> tuple[BootstrapToken, bool]:
    """The token a join uses, and whether it was made now: a new one (audited) when asked
    for, else the usable one; ``NoUsableToken`` when there is none."""
    if new_token:
        return new_join_token(cluster, actor=actor, now=now), True
    return require_join_token(cluster, now), False


def ca_cert_hashes(cluster: Cluster) -> list[str]:
    """One discovery hash per cluster CA certificate, as kubeadm prints them."""
    # The certificate store, imported late to keep this module light.
    from pki.services import certificates as certificate_services

    certificates = certificate_services.ca_certificates(cluster)
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


def usable_certificate_key(cluster: Cluster, now: datetime | None = None) -> CertificateKey | None:
    """The certificate key with at least an hour left (the newest), or None. Writes nothing."""
    now = now or timezone.now()
    return (
        cluster.certificate_keys.filter(expires_at__gte=now + MIN_CERTIFICATE_KEY_LIFETIME)
        .order_by("-expires_at", "-id")
        .first()
    )


def require_certificate_key(cluster: Cluster, now: datetime | None = None) -> CertificateKey:
    """The usable certificate key; ``NoCertificateKey`` when there is none (none is made)."""
    key = usable_certificate_key(cluster, now)
    if key is None:
        raise NoCertificateKey(
            f"Cluster {cluster.name} has no certificate key with at least 1 hour left "
            "(a key lasts 2 hours, as long as kubeadm keeps the kubeadm-certs Secret).",
            cluster.pk,
        )
    return key


def ensure_certificate_key(
    cluster: Cluster, *, actor: Actor, now: datetime | None = None
) -> tuple[CertificateKey, bool]:
    """The usable certificate key, and whether it was made now: when none has an hour left a
    new one is made, recorded as ``certificate_key.create`` (its id, never its value)."""
    now = now or timezone.now()
    with transaction.atomic():
        key = usable_certificate_key(cluster, now)
        if key is not None:
            return key, False
        user = actor.user
        key = CertificateKey.objects.create(
            cluster=cluster,
            key=join_rules.generate_certificate_key(),
            created_at=now,
            expires_at=now + CERTIFICATE_KEY_TTL,
            created_by=user if getattr(user, "pk", None) else None,
        )
        audit.record(
            "certificate_key.create", actor, obj=key, details={"certificate_key_id": key.pk}
        )
    return key, True


def new_join_token(
    cluster: Cluster, *, actor: Actor, now: datetime | None = None
) -> BootstrapToken:
    """A fresh token for joining (kubeadm's defaults), audited as ``token.create``."""
    request = validate_token_request(description="join command")
    return create_token(cluster, request, actor=actor, now=now)


# What a page shows in place of a secret until the user asks for it (an audited reveal): the
# text is rendered with well-formed stand-ins, which are then replaced by asterisks, so that a
# preview never reads a secret at all.
MASK = "*"
_PLACEHOLDER_SECRET = "0" * 16
PLACEHOLDER_CERTIFICATE_KEY = "0" * 64


def masked_token(token: BootstrapToken) -> str:
    """``abcdef.****************``: the public id, the secret hidden."""
    return f"{token.token_id}.{MASK * len(_PLACEHOLDER_SECRET)}"


def placeholder_token(token: BootstrapToken) -> str:
    """A well-formed token with the real id and a stand-in secret, for masked renderings."""
    return f"{token.token_id}.{_PLACEHOLDER_SECRET}"


def mask_placeholders(text: str, token: BootstrapToken) -> str:
    """Text rendered with the stand-in secret and key, with both shown as asterisks."""
    text = text.replace(placeholder_token(token), masked_token(token))
    return text.replace(PLACEHOLDER_CERTIFICATE_KEY, MASK * len(PLACEHOLDER_CERTIFICATE_KEY))


@dataclass(frozen=True)
class JoinCommand:
    """A rendered join command and what it reveals (recorded when it was made)."""

    role: str
    command: str = field(repr=False)
    one_line: str = field(repr=False)
    token: BootstrapToken
    certificate_key: CertificateKey | None
    token_created: bool
    # True for the card's preview: the token and the certificate key are shown as asterisks.
    masked: bool = False

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


def refuse_binary(cluster: Cluster) -> None:
    """A binary install has no ``kubeadm join``: its nodes are joined by the binary jobs."""
    if cluster.flavor == ClusterFlavor.BINARY:
        raise JoinUnavailable(
            f"{cluster.name} is a binary install (no kubeadm): it has no kubeadm join command; "
            "nodes join with the binary install jobs"
        )


def validate_role(role: str | None) -> str:
    value = role or NodeRole.WORKER
    if value not in ROLES:
        raise InputError(f"must be one of {', '.join(ROLES)}, not {value!r}", "role")
    return value


def join_command(
    cluster: Cluster,
    role: str = NodeRole.WORKER,
    *,
    new_token: bool = False,
    create_key: bool = False,
    actor: Actor,
    now: datetime | None = None,
) -> JoinCommand:
    """The ``kubeadm join`` command for a worker or a control-plane node, in kubeadm's format.

    Showing it reveals a token (and for a control plane the certificate key), so it is recorded
    as ``join_command.reveal`` with their ids. A control-plane command is refused (403) to a
    role that may not see the certificate key. Raises :class:`JoinUnavailable` when there is no
    usable token (and none was asked for), no certificate key for a control plane (and none
    was asked for with ``create_key``) or no cluster CA yet.
    """
    now = now or timezone.now()
    refuse_binary(cluster)
    role = validate_role(role)
    if role != NodeRole.WORKER:
        require_certificate_key_access(actor)
    hashes = ca_cert_hashes(cluster)
    control_plane = role == NodeRole.CONTROL_PLANE
    with transaction.atomic():
        if control_plane and not create_key:
            require_certificate_key(cluster, now)  # before a new token is made for nothing
        token, created = join_token(cluster, new_token, actor, now)
        key = ensure_certificate_key(cluster, actor=actor, now=now)[0] if control_plane else None
        audit.record(
            "join_command.reveal",
            actor,
            obj=token,
            cluster=cluster,
            details={
                "role": role,
                "token_id": token.token_id,
                "certificate_key_id": key.pk if key else None,
            },
        )
    arguments: dict[str, Any] = {
        "endpoint": cluster.normalized_endpoint,
        "token": token.value,
        "ca_cert_hashes": hashes,
        "control_plane": control_plane,
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


def join_command_preview(
    cluster: Cluster, role: str = NodeRole.WORKER, *, now: datetime | None = None
) -> JoinCommand:
    """The join command with its token and certificate key masked, as the join card shows it
    before Show or Copy. Reads only: it makes, reveals and records nothing. The key is the
    usable one (None when there is none yet: the reveal makes it)."""
    now = now or timezone.now()
    refuse_binary(cluster)
    role = validate_role(role)
    hashes = ca_cert_hashes(cluster)
    token = require_join_token(cluster, now)
    control_plane = role == NodeRole.CONTROL_PLANE
    key = usable_certificate_key(cluster, now) if control_plane else None
    arguments: dict[str, Any] = {
        "endpoint": cluster.normalized_endpoint,
        "token": placeholder_token(token),
        "ca_cert_hashes": hashes,
        "control_plane": control_plane,
        "certificate_key": PLACEHOLDER_CERTIFICATE_KEY if control_plane else None,
    }
    return JoinCommand(
        role=role,
        command=mask_placeholders(join_rules.format_join_command(**arguments), token),
        one_line=mask_placeholders(
            join_rules.format_join_command(**arguments, one_line=True), token
        ),
        token=token,
        certificate_key=key,
        token_created=False,
        masked=True,
    )


def join_card_preview(
    cluster: Cluster, *, actor: Actor, now: datetime | None = None
) -> tuple[JoinCommand, JoinCommand | None]:
    """The worker and the control-plane command of the join card, masked, on one token; no
    control-plane command (None) for a role that may not see the certificate key."""
    now = now or timezone.now()
    worker = join_command_preview(cluster, NodeRole.WORKER, now=now)
    if not may_see_certificate_key(actor):
        return worker, None
    return worker, join_command_preview(cluster, NodeRole.CONTROL_PLANE, now=now)
