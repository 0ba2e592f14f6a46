"""The cluster's Backups tab: its kept etcd snapshots (newest first, sorted and paged), the admin
download, and the links that take a backup now or restore one (both through the jobs' launch
page, which previews first)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from clusterpanel.errors import Conflict
from clusterpanel.jobs.models import Job
from clusterpanel.security.audit import Actor
from clusterpanel.web.access import get_for_user
from clusterpanel.web.responses import download
from clusterpanel.web.tables import DESC, Column, Table
from nodes import etcd_snapshots
from nodes.models import Cluster, EtcdSnapshot

SNAPSHOT_COLUMNS = [
    Column("Taken at", "taken", ("taken_at",)),
    Column("Size", "size", ("size",)),
    Column("SHA-256"),
    Column("Revision", "revision", ("revision",)),
    Column("Job", "job", ("job_id",)),
    Column("Actions"),
]


def cluster_backups(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_for_user(request, Cluster, pk)
    table = Table(request, SNAPSHOT_COLUMNS, default="taken", default_dir=DESC)
    rows = EtcdSnapshot.objects.filter(cluster=cluster).order_by("-taken_at", "-pk")
    snapshots = table.paginate(table.order(rows))
    # Only jobs that still exist link; a snapshot outlives the job row it came from.
    jobs = set(
        Job.objects.filter(pk__in=[s.job_id for s in snapshots if s.job_id]).values_list(
            "pk", flat=True
        )
    )
    context = {
        "cluster": cluster,
        "snapshots": snapshots,
        "table": table,
        "jobs": jobs,
        "now": timezone.now(),
    }
    return render(request, "nodes/cluster_backups.html", context)


def backup_download(request: HttpRequest, pk: int, snapshot_pk: int) -> HttpResponse:
    """The plain snapshot, for admins (the service checks the role and audits the download)."""
    cluster = get_for_user(request, Cluster, pk, "download_etcd_snapshots")
    snapshot = get_for_user(request, EtcdSnapshot.objects.filter(cluster=cluster), snapshot_pk)
    try:
        data = etcd_snapshots.download_snapshot(Actor.from_request(request), snapshot)
    except Conflict as exc:
        messages.error(request, str(exc))
        return redirect("cluster_backups", pk=cluster.pk)
    name = f"{cluster.name}-etcd-{snapshot.taken_at:%Y%m%dT%H%M%SZ}.db"
    return download(data, name, "application/octet-stream")
