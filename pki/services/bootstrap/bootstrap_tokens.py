"""Bootstrap tokens: validate a request, store a token, render it, pick one to join with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from clusterpanel.errors import Conflict, InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import services as inventory
from nodes.models import Cluster
from pki.domain import tokens as token_rules
from pki.domain.identities import Door
from pki.models.tokens import BootstrapToken
from pki.services import identities as identity_policy

# A join takes minutes, but a command copied now may be pasted later: never hand out a token
# that is about to expire.
MIN_JOIN_TOKEN_LIFETIME = timedelta(hours=1)


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
    parsed_token = None
    if token:
        parsed_token = attempt("token", lambda: token_rules.parse_token(token))
    if parsed_groups and parsed_usages is not None and "authentication" not in parsed_usages:
        # kubeadm refuses the same: groups only matter to a token that authenticates.
        errors.setdefault("groups", []).append(
            'extra groups need the "authentication" usage; remove the groups or add the usage'
        )
    if errors:
        raise InputError.many(errors)
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
    actor: Actor,
    now: datetime | None = None,
) -> BootstrapToken:
    """Store a new bootstrap token, audited; a given token id must not exist in the cluster.

    Its extra groups go through the identity policy: kubeadm's ``system:bootstrappers:`` rule
    for everybody (so no ``system:masters`` on a token, whoever asks).
    """
    privileged = identity_policy.authorize(
        actor,
        Door.BOOTSTRAP_TOKEN,
        {"group": "groups"},
        groups=request.groups,
    )
    now = now or timezone.now()
    expires_at = token_rules.expiry_for(request.ttl, now)
    with transaction.atomic():
        inventory.lock_cluster(cluster)
        if request.token is not None:
            if cluster.bootstrap_tokens.filter(token_id=request.token.id).exists():
                raise InputError.many(
                    {"token": [f"a token with id {request.token.id} already exists in {cluster}"]}
                )
            value = request.token
        else:
            value = token_rules.generate_token()
            # 36**6 ids: a clash is rare but possible, and the id must be unique.
            while cluster.bootstrap_tokens.filter(token_id=value.id).exists():
                value = token_rules.generate_token()
        user = actor.user
        try:
            with transaction.atomic():
                token = BootstrapToken.objects.create(
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
            raise InputError.many(
                {"token": [f"a token with id {value.id} already exists in {cluster}"]}
            ) from None
        audit.record(
            "token.create",
            actor,
            obj=token,
            details={
                "token_id": token.token_id,
                "ttl_seconds": token.ttl.total_seconds(),
                "usages": token.usages,
                "groups": token.groups,
                "privileged": privileged,
            },
        )
    return token


@transaction.atomic
def reveal_token(token: BootstrapToken, *, actor: Actor) -> BootstrapToken:
    """Record that ``actor`` is shown the whole token; the caller then shows it."""
    audit.record("token.reveal", actor, obj=token, details={"token_id": token.token_id})
    return token


@transaction.atomic
def revoke_token(token: BootstrapToken, *, actor: Actor) -> BootstrapToken:
    """Revoke the token (once; revoking a revoked token changes and records nothing).

    Decided on the stored row, locked: of two revocations at once one records the event, and a
    token deleted meanwhile (with its cluster) is a Conflict.
    """
    inventory.lock_cluster(token.cluster_id)
    stored = BootstrapToken.objects.select_for_update().filter(pk=token.pk).first()
    if stored is None:
        raise Conflict(f"Token {token.token_id} was deleted while it was being revoked.")
    if stored.revoked_at is None:
        stored.revoke(actor.user)
        audit.record("token.revoke", actor, obj=stored)
    return stored


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


def parse_groups(text: str) -> list[str]:
    """Groups typed in a form: comma- or newline-separated."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
