"""Models that belong to the panel itself: the audit log, API tokens, worker heartbeats."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events cannot be deleted")


class AuditEvent(models.Model):
    """One sensitive action: who did what to which object, from where, when.

    Append-only: saving an existing event or deleting one raises, in code and in
    the admin alike, so the log is a trustworthy record for auditors.
    """

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as text too so the record survives the user's deletion.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=255, blank=True)
    cluster = models.ForeignKey(
        "nodes.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cluster_name = models.CharField(max_length=63, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # The door the action came through: web, api, admin, job or command.
    via = models.CharField(max_length=16, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events cannot be deleted")


TOKEN_PREFIX_LENGTH = 8


def _hash_token(secret: str) -> str:
    # The tokens are 256-bit random strings, so a plain SHA-256 is enough:
    # there is nothing to brute-force as there would be with a password.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A REST API token. Only its hash is stored; the key is shown once, at creation.

    The key is ``cp_<prefix>_<secret>``; the prefix finds the row, the hash of the
    whole key is compared in constant time.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def issue(cls, user: Any, name: str = "") -> tuple[ApiToken, str]:
        """Create a token and return it with its key, which is never shown again."""
        while True:
            prefix = secrets.token_hex(TOKEN_PREFIX_LENGTH // 2)
            if not cls.objects.filter(prefix=prefix).exists():
                break
        key = f"cp_{prefix}_{secrets.token_urlsafe(32)}"
        token = cls.objects.create(user=user, name=name, prefix=prefix, key_hash=_hash_token(key))
        return token, key

    @classmethod
    def authenticate(cls, key: str) -> ApiToken | None:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "cp" or len(parts[1]) != TOKEN_PREFIX_LENGTH:
            return None
        token = cls.objects.active().select_related("user").filter(prefix=parts[1]).first()
        if token is None or not hmac.compare_digest(token.key_hash, _hash_token(key)):
            return None
        return token

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the periodic heartbeat task.

    The panel's /healthz reports it, so an operator sees a dead worker or beat.
    """

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


# The jobs' models live in their own module; importing them here registers them with the app.
from clusterpanel.jobs.models import Job, JobLogChunk, JobStep  # noqa: E402

__all__ = ["ApiToken", "AuditEvent", "Job", "JobLogChunk", "JobStep", "WorkerHeartbeat"]
