"""Scheduled etcd backups: the periodic task launches ``etcd-backup`` exactly on the clusters
whose newest snapshot is as old as their interval, once, and skips the ones it cannot launch.
Called directly (no beat); the launched jobs stay queued (no worker runs here)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.models import AuditEvent
from nodes import etcd_snapshots
from nodes.models import Cluster, EtcdSnapshot
from nodes.tasks import schedule_etcd_backups
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


def _ready(name: str, hours: int) -> Cluster:
    """A cluster a backup can be launched on: an etcd member and the panel's client certificate."""
    cluster = make_cluster(name, key_algorithm="ECDSA-P256", etcd_backup_interval_hours=hours)
    make_node(cluster, "control-plane", name=f"{name}-cp")
    issue_missing(cluster, actor=SETUP)
    return cluster


def _snapshot_at(cluster: Cluster, hours_ago: float) -> EtcdSnapshot:
    snapshot = etcd_snapshots.store_snapshot(cluster, b"snap", {}, actor=SETUP, job_id=None)
    taken = timezone.now() - timedelta(hours=hours_ago)
    EtcdSnapshot.objects.filter(pk=snapshot.pk).update(taken_at=taken)
    return snapshot


def test_a_backup_is_launched_exactly_when_the_newest_snapshot_is_as_old_as_the_interval() -> None:
    cluster = _ready("sched", 6)
    _snapshot_at(cluster, 5)
    now = timezone.now()
    assert schedule_etcd_backups(now) == []
    assert schedule_etcd_backups(now + timedelta(minutes=59)) == []
    launched = schedule_etcd_backups(now + timedelta(hours=1, seconds=1))
    job = Job.objects.get()
    assert launched == [job.pk]
    assert job.kind == "etcd-backup" and job.status == JobStatus.QUEUED
    assert job.cluster_id == cluster.pk and job.launched_by is None and job.via == "schedule"
    event = AuditEvent.objects.get(action="job.launch")
    assert event.via == "schedule"
    # While that backup is queued, later runs launch no second one.
    assert schedule_etcd_backups(now + timedelta(hours=2)) == []
    assert Job.objects.count() == 1
    # Once it has ended (and still no newer snapshot), the next run tries again.
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED)
    assert len(schedule_etcd_backups(now + timedelta(hours=2))) == 1


def test_a_cluster_without_snapshots_is_due_and_interval_zero_is_never_due() -> None:
    never = _ready("never", 0)
    _snapshot_at(never, 10_000)
    fresh = _ready("fresh", 24)
    launched = schedule_etcd_backups()
    assert [Job.objects.get(pk=pk).cluster_id for pk in launched] == [fresh.pk]


def test_a_cluster_the_launch_refuses_is_skipped_and_the_others_still_backed_up() -> None:
    # No PKI yet: the backup's plan needs the panel's etcd client certificate.
    broken = make_cluster("a-broken", etcd_backup_interval_hours=1)
    make_node(broken, "control-plane", name="b-cp")
    ready = _ready("b-ready", 1)
    launched = schedule_etcd_backups()
    assert [Job.objects.get(pk=pk).cluster_id for pk in launched] == [ready.pk]
    assert not Job.objects.filter(cluster=broken).exists()


def test_beat_runs_the_task_by_its_registered_name() -> None:
    from clusterpanel.celery import app

    entry = app.conf.beat_schedule["schedule-etcd-backups"]
    app.loader.import_default_modules()  # the apps' tasks modules, as a worker loads them
    assert app.tasks[entry["task"]].name == schedule_etcd_backups.name
