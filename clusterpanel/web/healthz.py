"""``/healthz``: the panel's own health, for load balancers and container checks."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from clusterpanel.models import WorkerHeartbeat

# Beat runs the heartbeat every 30 s; allow a few missed runs before alarming.
HEARTBEAT_STALE_AFTER = timedelta(minutes=2)


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The panel's own health: database reachable, and when a worker last ran.

    A stale worker is reported but does not fail the check: the web tier is
    healthy on its own and a load balancer should keep sending it traffic.
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    newest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    worker = "unknown"
    if newest is not None:
        worker = "ok" if timezone.now() - newest.seen_at < HEARTBEAT_STALE_AFTER else "stale"
    return JsonResponse(
        {
            "status": "ok",
            "database": "ok",
            "worker": worker,
            "worker_seen_at": newest.seen_at.isoformat() if newest else None,
        }
    )
