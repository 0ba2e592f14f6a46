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
from nodes.models import Cluster, NodeRole
from pki.domain import join as join_rules
from pki.domain import upload_certs
from pki.domain.x509 import spki_sha256
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services.bootstrap.bootstrap_tokens import (
    create_token,
    usable_join_token,
    validate_token_request,
)
from pki.services.bootstrap.errors import JoinUnavailable, NoUsableToken

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


def join_token(
    cluster: Cluster, new_token: bool, actor: Actor, now: datetime
) -> tuple[BootstrapToken, bool]:
    """The token a join uses, and whether it was made now: a new one (audited) when asked
    for, else the usable one; ``NoUsableToken`` when there is none."""
    if new_token:
        request = validate_token_request(description="join command")
        return create_token(cluster, request, actor=actor, now=now), True
    token = usable_join_token(cluster, now)
    if token is None:
        raise NoUsableToken(
            f"Cluster {cluster.name} has no valid bootstrap token with at least 1 hour left "
            "(tokens that are revoked, expired, about to expire, or lack the signing and "
            "authentication usages are not used)."
        )
    return token, False


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
    """A rendered join command and what it reveals (recorded when it was made)."""

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
    value = role or NodeRole.WORKER
    if value not in ROLES:
        raise InputError(f"must be one of {', '.join(ROLES)}, not {value!r}", "role")
    return value


def join_command(
    cluster: Cluster,
    role: str = NodeRole.WORKER,
    *,
    new_token: bool = False,
    actor: Actor,
    now: datetime | None = None,
) -> JoinCommand:
    """The ``kubeadm join`` command for a worker or a control-plane node, in kubeadm's format.

    Showing it reveals a token (and for a control plane the certificate key), so it is recorded
    as ``join_command.reveal`` with their ids. A control-plane command is refused (403) to a
    role that may not see the certificate key. Raises :class:`JoinUnavailable` when there is no
    usable token (and none was asked for) or no cluster CA yet.
    """
    now = now or timezone.now()
    role = validate_role(role)
    if role != NodeRole.WORKER:
        require_certificate_key_access(actor)
    hashes = ca_cert_hashes(cluster)
    with transaction.atomic():
        token, created = join_token(cluster, new_token, actor, now)
        key = (
            current_certificate_key(cluster, user=actor.user, now=now)
            if role != NodeRole.WORKER
            else None
        )
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
        "control_plane": role == NodeRole.CONTROL_PLANE,
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


@transaction.atomic
def join_commands_for_card(
    cluster: Cluster, *, new_token: bool, actor: Actor
) -> tuple[JoinCommand, JoinCommand | None]:
    """The worker and the control-plane command of the join card, on one token; no
    control-plane command (None) for a role that may not see the certificate key."""
    worker = join_command(cluster, NodeRole.WORKER, new_token=new_token, actor=actor)
    if not may_see_certificate_key(actor):
        return worker, None
    return worker, join_command(cluster, NodeRole.CONTROL_PLANE, actor=actor)
