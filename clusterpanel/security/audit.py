"""Write audit events. Every sensitive action goes through ``record``."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from clusterpanel.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    obj: models.Model | None = None,
    cluster: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``details`` must never contain a secret value."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    if cluster is None and obj is not None:
        cluster = _cluster_of(obj)
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=getattr(actor, "username", "") if actor is not None else "",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_label=str(obj)[:255] if obj is not None else "",
        cluster=cluster,
        cluster_name=getattr(cluster, "name", "") if cluster is not None else "",
        client_ip=client_ip(request),
        details=details or {},
    )


def _cluster_of(obj: models.Model) -> Any:
    from nodes.models import Cluster

    if isinstance(obj, Cluster):
        return obj
    return getattr(obj, "cluster", None)
