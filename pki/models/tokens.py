"""Bootstrap tokens, certificate keys and static tokens.

Every secret here (token secrets, certificate keys, static token values) is stored with
``EncryptedTextField``; ids and metadata stay in plain text so that lists, filters and
uniqueness checks work without decrypting anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils import timezone

from clusterpanel.security.fields import EncryptedTextField
from clusterpanel.validators import ListLimit
from pki.domain import principals
from pki.domain import static_tokens as static_rules
from pki.domain import tokens as token_rules

__all__ = [
    "BootstrapToken",
    "CertificateKey",
    "StaticToken",
    "TokenStatus",
]


class TokenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class BootstrapTokenQuerySet(models.QuerySet["BootstrapToken"]):
    """Status lookups. Status is derived from the clock, never stored, so it cannot go stale."""

    def active(self, now: datetime | None = None) -> BootstrapTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def expired(self, now: datetime | None = None) -> BootstrapTokenQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__lte=now)

    def revoked(self) -> BootstrapTokenQuerySet:
        return self.filter(revoked_at__isnull=False)

    def with_status(self, status: str, now: datetime | None = None) -> BootstrapTokenQuerySet:
        if status == TokenStatus.ACTIVE:
            return self.active(now)
        if status == TokenStatus.EXPIRED:
            return self.expired(now)
        if status == TokenStatus.REVOKED:
            return self.revoked()
        return self.none()


class BootstrapToken(models.Model):
    """A kubeadm bootstrap token (``<id>.<secret>``) of one cluster.

    The id is public (it names the ``bootstrap-token-<id>`` Secret and appears in lists); the
    secret is encrypted at rest and only leaves the panel through an audited reveal. ``ttl`` is
    kept as given so the equivalent ``kubeadm token create --ttl`` can be printed; a TTL of 0
    means the token never expires (``expires_at`` is null).
    """

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="bootstrap_tokens"
    )
    token_id = models.CharField(max_length=6, db_index=True)
    secret = EncryptedTextField()
    description = models.CharField(max_length=token_rules.MAX_DESCRIPTION, blank=True)
    usages = models.JSONField(default=list, validators=[ListLimit(len(token_rules.VALID_USAGES))])
    groups = models.JSONField(default=list, validators=[ListLimit(token_rules.MAX_GROUPS)])
    ttl = models.DurationField(default=token_rules.DEFAULT_TTL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = BootstrapTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The id names a Secret in kube-system: two tokens with one id cannot coexist.
            models.UniqueConstraint(
                fields=["cluster", "token_id"],
                name="bootstrap_token_id_unique_in_cluster",
                violation_error_message="A token with this id already exists in the cluster.",
            )
        ]

    def __str__(self) -> str:
        # Only the public id: this string ends up in audit labels and admin pages.
        return self.token_id

    @property
    def value(self) -> str:
        """The full ``id.secret``; callers must audit showing it."""
        return f"{self.token_id}.{self.secret}"

    def status(self, now: datetime | None = None) -> str:
        return token_rules.token_status(self.expires_at, self.revoked_at, now or timezone.now())

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        """Time until expiry (never negative), or None for a token that never expires."""
        if self.expires_at is None:
            return None
        return max(self.expires_at - (now or timezone.now()), timedelta(0))

    @property
    def never_expires(self) -> bool:
        return self.expires_at is None

    def revoke(self, user: Any = None, now: datetime | None = None) -> None:
        self.revoked_at = now or timezone.now()
        self.revoked_by = user if getattr(user, "pk", None) else None
        self.save(update_fields=["revoked_at", "revoked_by"])

    def can_join(self) -> bool:
        """Whether ``kubeadm join`` can use it: discovery needs ``signing``, the TLS bootstrap
        ``authentication`` and the default node group (kubeadm's RBAC is bound to that group)."""
        return (
            set(token_rules.VALID_USAGES) <= set(self.usages)
            and token_rules.DEFAULT_GROUP in self.groups
        )


class CertificateKey(models.Model):
    """A ``--certificate-key`` for control-plane joins: 32 random bytes (64 hex), AES-256-GCM.

    kubeadm deletes the ``kubeadm-certs`` Secret after two hours, so a key is only good for that
    long.
    """

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="certificate_keys"
    )
    key = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"certificate key {self.pk} of {self.cluster_id}"

    def is_valid(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) < self.expires_at


class StaticToken(models.Model):
    """One row of the API server's ``--token-auth-file`` (binary installs without kubeadm).

    The token is encrypted, so duplicates are found by comparing decrypted values in
    ``pki.services.bootstrap`` rather than by a database constraint.
    """

    cluster = models.ForeignKey(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="static_tokens"
    )
    token = EncryptedTextField(
        max_length=static_rules.MAX_TOKEN_LENGTH,
        validators=[MaxLengthValidator(static_rules.MAX_TOKEN_LENGTH)],
    )
    user = models.CharField(max_length=static_rules.MAX_NAME_LENGTH)
    uid = models.CharField(max_length=static_rules.MAX_NAME_LENGTH, blank=True)
    groups = models.JSONField(
        default=list,
        blank=True,
        validators=[ListLimit(static_rules.MAX_GROUPS, principals.MAX_GROUP_NAME)],
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"static token of {self.user}"
