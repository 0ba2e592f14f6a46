"""The nodes app's periodic tasks: scheduled etcd backups and the daily certificate scan (beat
names them in clusterpanel/celery.py).

A backup is due on a cluster whose ``etcd_backup_interval_hours`` is set and whose newest kept
snapshot is at least that old (or that has none). A cluster with a backup already queued or
running is skipped, as is one the launch refuses (no etcd members or client certificate yet, a
conflict): the next run tries again, and the refusal is logged, never raised, so that one
cluster does not keep the others from their backups.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from clusterpanel.errors import Conflict, InputError
from clusterpanel.jobs import services as job_services
from clusterpanel.jobs.models import ACTIVE_STATUSES, Job
from nodes.models import Cluster, ClusterFlavor
from nodes.recipes.cert_scan import KIND as SCAN_KIND
from nodes.recipes.etcd_backup import BACKUP_KIND

log = logging.getLogger(__name__)


def due_clusters(now: datetime) -> list[Cluster]:
    """The clusters whose scheduled etcd backup is due at ``now``, by name."""
    clusters = (
        Cluster.objects.filter(etcd_backup_interval_hours__gt=0)
        .annotate(newest=Max("etcd_snapshots__taken_at"))
        .order_by("name")
    )
    due = []
    for cluster in clusters:
        newest: datetime | None = getattr(cluster, "newest", None)
        if newest is None or newest <= now - timedelta(hours=cluster.etcd_backup_interval_hours):
            due.append(cluster)
    return due


def _launch_if_idle(cluster: Cluster, kind: str = BACKUP_KIND) -> int | None:
    with transaction.atomic():
        # The cluster's row lock orders two overlapping runs: the second sees the first's job.
        Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        active = Job.objects.filter(cluster=cluster, kind=kind, status__in=ACTIVE_STATUSES)
        if active.exists():
            return None
        return int(job_services.launch_scheduled_job(cluster, kind).pk)


@shared_task(name="nodes.schedule_etcd_backups", ignore_result=True)
def schedule_etcd_backups(now: datetime | None = None) -> list[int]:
    """Launch the due etcd backups; the ids of the jobs launched. Beat calls it without
    arguments; ``now`` is for calling it directly."""
    launched = []
    for cluster in due_clusters(now or timezone.now()):
        try:
            job_id = _launch_if_idle(cluster)
        except (Conflict, InputError) as error:
            log.warning("scheduled etcd backup of cluster %s not launched: %s", cluster.name, error)
            continue
        if job_id is not None:
            launched.append(job_id)
    return launched


@shared_task(name="nodes.schedule_cert_scans", ignore_result=True)
def schedule_cert_scans() -> list[int]:
    """Launch a certificate scan of every cluster with nodes (one not already scanning); the ids
    of the jobs launched. A refused launch is logged and the other clusters still get theirs."""
    launched = []
    # Binary-installed clusters keep their certificates elsewhere: cert-scan is a kubeadm kind.
    clusters = Cluster.objects.filter(nodes__isnull=False, flavor=ClusterFlavor.KUBEADM)
    for cluster in clusters.distinct().order_by("name"):
        try:
            job_id = _launch_if_idle(cluster, SCAN_KIND)
        except (Conflict, InputError) as error:
            log.warning("scheduled certificate scan of %s not launched: %s", cluster.name, error)
            continue
        if job_id is not None:
            launched.append(job_id)
    return launched


# The health and alert tasks live beside their services; importing them here registers them with
# the worker, which discovers each app's ``tasks`` module only.
from nodes.alerts import tasks as alert_tasks  # noqa: E402
from nodes.health import tasks as health_tasks  # noqa: E402
from nodes.renewal import tasks as renewal_tasks  # noqa: E402

__all__ = [
    "alert_tasks",
    "health_tasks",
    "renewal_tasks",
    "schedule_cert_scans",
    "schedule_etcd_backups",
]
