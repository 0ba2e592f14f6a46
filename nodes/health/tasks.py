"""Beat's health tasks: every 10 s, one round for each cluster whose interval has elapsed, and
the daily pruning of history.

A round is claimed in the database before it is sent (``health_next_at`` moved past now by one
conditional UPDATE), so two beat ticks, two beats or a duplicated message never run one
cluster's round twice at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from nodes.health import services
from nodes.models import Cluster, HealthSample

log = logging.getLogger(__name__)


def claim(cluster_id: int, interval: int, now: datetime) -> bool:
    """Take the cluster's next round: True for exactly one caller per due time."""
    due = Q(health_next_at__isnull=True) | Q(health_next_at__lte=now)
    claimed = Cluster.objects.filter(due, pk=cluster_id).update(
        health_next_at=now + timedelta(seconds=interval)
    )
    return claimed == 1


@shared_task(name="nodes.schedule_health_rounds", ignore_result=True)
def schedule_health_rounds(now: datetime | None = None) -> list[int]:
    """Send one round for every due cluster; the ids of the clusters sent."""
    now = now or timezone.now()
    due = Cluster.objects.filter(Q(health_next_at__isnull=True) | Q(health_next_at__lte=now))
    sent = []
    for cluster_id, interval in due.values_list("pk", "health_interval_seconds"):
        if claim(cluster_id, interval, now):
            run_health_round.delay(cluster_id)
            sent.append(cluster_id)
    return sent


@shared_task(name="nodes.run_health_round", ignore_result=True)
def run_health_round(cluster_id: int) -> int:
    """One round of ``cluster_id``'s checks; the number of results stored."""
    cluster = Cluster.objects.filter(pk=cluster_id).first()
    if cluster is None:
        return 0
    return len(services.run_round(cluster))


@shared_task(name="nodes.prune_health_history", ignore_result=True)
def prune_health_history(now: datetime | None = None) -> int:
    """Delete history samples older than ``CLUSTERPANEL_HEALTH_HISTORY_DAYS``; how many."""
    days = int(getattr(settings, "CLUSTERPANEL_HEALTH_HISTORY_DAYS", 7))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = HealthSample.objects.filter(checked_at__lt=cutoff).delete()
    return deleted
