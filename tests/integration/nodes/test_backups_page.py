"""The Backups tab of a cluster: the kept etcd snapshots per persona, the admin download, and
restoring through the launch page with the typed confirmation. No worker runs here: a launched
job stays queued."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.models import AuditEvent
from nodes import etcd_snapshots
from nodes.models import Cluster, EtcdSnapshot
from tests.actors import SETUP
from tests.empty_state import action_link, empty_state
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db

DATA = b"bbolt-made-up" * 50


@pytest.fixture
def prod() -> Cluster:
    cluster = make_cluster("prod", etcd_topology="external")
    make_node(cluster, "control-plane", name="cp-1")
    make_node(cluster, "etcd", name="etcd-1")
    return cluster


def _store(cluster: Cluster) -> EtcdSnapshot:
    status = {"revision": 4242, "total_keys": 9, "hash": 1, "endpoint": "https://cp-1:2379"}
    return etcd_snapshots.store_snapshot(cluster, DATA, status, actor=SETUP, job_id=None)


def test_an_empty_cluster_invites_a_first_backup(
    web_client: Callable[[str], Any], prod: Cluster
) -> None:
    body = web_client("operator").get(f"/clusters/{prod.pk}/backups/").content.decode()
    state = empty_state(body, "backups-table")
    assert state.startswith("No backups yet:") and "take one now" in state
    assert action_link(state) == f"/clusters/{prod.pk}/jobs/new/?kind=etcd-backup"
    # A viewer is told who takes one, and offered no link.
    body = web_client("viewer").get(f"/clusters/{prod.pk}/backups/").content.decode()
    assert empty_state(body, "backups-table") == "No backups yet: an operator can take one."
    assert "?kind=etcd-backup" not in body
    # The tab is on every cluster page.
    overview = web_client("viewer").get(f"/clusters/{prod.pk}/").content.decode()
    assert f"/clusters/{prod.pk}/backups/" in overview


def test_a_viewer_sees_the_snapshots_but_neither_download_nor_restore(
    web_client: Callable[[str], Any], prod: Cluster
) -> None:
    snapshot = _store(prod)
    response = web_client("viewer").get(f"/clusters/{prod.pk}/backups/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="snapshot-{snapshot.pk}"' in body
    assert snapshot.sha256[:16] in body and "4242" in body
    # Relative ("just now") and absolute, from the |when_exact filter.
    assert f"{snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC</time>" in body
    assert '<span class="when">just now <time' in body
    assert "/download/" not in body and "etcd-restore" not in body and "take-backup" not in body
    download = f"/clusters/{prod.pk}/backups/{snapshot.pk}/download/"
    assert web_client("viewer").get(download).status_code == 403
    assert web_client("operator").get(download).status_code == 403
    assert not AuditEvent.objects.filter(action="etcd.snapshot.download").exists()


def test_an_admin_downloads_the_plain_snapshot_audited(
    web_client: Callable[[str], Any], prod: Cluster
) -> None:
    snapshot = _store(prod)
    page = web_client("admin").get(f"/clusters/{prod.pk}/backups/").content.decode()
    download = f"/clusters/{prod.pk}/backups/{snapshot.pk}/download/"
    assert download in page
    response = web_client("admin").get(download)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == snapshot.sha256
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="etcd.snapshot.download").count() == 1
    # Another cluster's snapshot is not reachable under this cluster's address.
    other = _store(make_cluster("other"))
    foreign = f"/clusters/{prod.pk}/backups/{other.pk}/download/"
    assert web_client("admin").get(foreign).status_code == 404


def test_restore_asks_for_the_name_refuses_a_wrong_one_and_launches_with_the_right_one(
    web_client: Callable[[str], Any], prod: Cluster
) -> None:
    snapshot = _store(prod)
    client = web_client("operator")
    page = client.get(f"/clusters/{prod.pk}/backups/").content.decode()
    link = f"/clusters/{prod.pk}/jobs/new/?kind=etcd-restore&amp;param.snapshot={snapshot.pk}"
    assert link in page
    opened = client.get(link.replace("&amp;", "&"))
    assert opened.status_code == 200  # the inputs first, no error yet
    body = opened.content.decode()
    assert 'name="param.confirm"' in body and f'value="{snapshot.pk}"' in body
    assert 'id="job-preview"' not in body

    url = f"/clusters/{prod.pk}/jobs/new/"
    wrong = {"kind": "etcd-restore", "param.snapshot": str(snapshot.pk), "param.confirm": "prd"}
    refused = client.post(url, wrong)
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "confirm" in body and "type the cluster&#x27;s name, prod" in body
    assert 'name="param.confirm" value="prd"' in body  # the input kept
    assert Job.objects.count() == 0

    preview = client.get(url, {**wrong, "param.confirm": "prod"})
    assert preview.status_code == 200
    assert 'id="job-preview"' in preview.content.decode()
    launched = client.post(url, {**wrong, "param.confirm": "prod"})
    job = Job.objects.get()
    assert launched.status_code == 302 and launched["Location"] == f"/jobs/{job.pk}/"
    assert job.kind == "etcd-restore" and job.status == JobStatus.QUEUED
    assert job.params == {"snapshot": snapshot.pk, "confirm": "prod"}


def test_an_unknown_parameter_is_named_and_shown_back(
    web_client: Callable[[str], Any], prod: Cluster
) -> None:
    response = web_client("operator").post(
        f"/clusters/{prod.pk}/jobs/new/", {"kind": "etcd-backup", "param.force": "yes"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "unknown parameter &#x27;force&#x27;" in body
    assert 'name="param.force" value="yes"' in body
