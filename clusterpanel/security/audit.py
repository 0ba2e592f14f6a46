"""Audit events with an actor: who did it, from where, and through which door.

Every sensitive action is one service function that takes an ``Actor`` and calls ``record``
inside its own transaction, so a page, the API and a job record the same event. A request
gives an actor with ``Actor.from_request``; a Celery job, which has no request, uses
``Actor.for_job``; management commands use ``Actor.for_command``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.db import models
from django.http import HttpRequest

from clusterpanel.models import AuditEvent

Via = Literal["web", "api", "admin", "job", "command", "schedule"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (or nobody, for a failed login), the client address, and the door."""

    user: Any
    client_ip: str | None
    via: Via

    @classmethod
    def from_request(cls, request: HttpRequest, user: Any = None) -> Actor:
        """The user of a page, API or admin request; ``user`` overrides it (at login)."""
        if user is None:
            candidate = getattr(request, "user", None)
            user = candidate if candidate is not None and candidate.is_authenticated else None
        return cls(user=user, client_ip=client_ip(request), via=_via(request))

    @classmethod
    def for_job(cls, user: Any) -> Actor:
        """A job run by a worker on behalf of the user who launched it."""
        return cls(user=user, client_ip=None, via="job")

    @classmethod
    def for_command(cls, user: Any = None) -> Actor:
        """A management command run on the panel's host."""
        return cls(user=user, client_ip=None, via="command")

    @classmethod
    def for_schedule(cls) -> Actor:
        """The panel itself, acting on a schedule (a periodic task), on behalf of nobody."""
        return cls(user=None, client_ip=None, via="schedule")

    @property
    def username(self) -> str:
        return str(getattr(self.user, "username", "")) if self.user is not None else ""


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _via(request: HttpRequest) -> Via:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


def record(
    action: str,
    actor: Actor,
    *,
    obj: models.Model | None = None,
    cluster: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``details`` must never contain a secret value."""
    if cluster is None and obj is not None:
        cluster = _cluster_of(obj)
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_name=actor.username,
        via=actor.via,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_label=str(obj)[:255] if obj is not None else "",
        cluster=cluster,
        cluster_name=getattr(cluster, "name", "") if cluster is not None else "",
        client_ip=actor.client_ip,
        details=details or {},
    )


def _cluster_of(obj: models.Model) -> Any:
    """The cluster an object belongs to: itself if it is one, else its ``cluster``."""
    if obj._meta.label_lower == "nodes.cluster":
        return obj
    return getattr(obj, "cluster", None)
