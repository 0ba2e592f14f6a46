"""Kept etcd snapshots without hosts: sealing, retention, the API, and the restore's refusals.

The snapshot bytes here are made up (what etcdctl wrote is exercised in test_etcd_jobs.py);
sealing and the checks around it do not look inside them.
"""

from __future__ import annotations

import base64
import io
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from clusterpanel.errors import Conflict
from clusterpanel.models import AuditEvent
from clusterpanel.security import crypto
from nodes import etcd_snapshots
from nodes.models import Cluster, EtcdSnapshot
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.dbdump import database_dump
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def etcd_cluster() -> Cluster:
    cluster = make_cluster("snapshots", etcd_topology="external", etcd_snapshot_retention=3)
    make_node(cluster, "control-plane")
    for _ in range(3):
        make_node(cluster, "etcd")
    return cluster


def _store(cluster: Cluster, data: bytes, revision: int = 5) -> EtcdSnapshot:
    status = {"revision": revision, "total_keys": 2, "hash": 77, "endpoint": "https://e:2379"}
    return etcd_snapshots.store_snapshot(cluster, data, status, actor=SETUP, job_id=None)


@pytest.fixture
def fresh_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    crypto.keyring.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    crypto.keyring.cache_clear()


def test_key_rotation_reseals_the_snapshot_files_and_the_old_key_can_go(
    etcd_cluster: Cluster, fresh_keyring: pytest.MonkeyPatch
) -> None:
    old, new = crypto.new_key(), crypto.new_key()
    old_id, new_id = (crypto.key_id(base64.urlsafe_b64decode(k)) for k in (old, new))
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", old)
    crypto.keyring.cache_clear()
    kept = {_store(etcd_cluster, f"snapshot {i}".encode() * 100, i): i for i in range(2)}
    gone = _store(etcd_cluster, b"its file is lost", 9)
    etcd_snapshots.sealed_path(gone).unlink()
    paths = [etcd_snapshots.sealed_path(s) for s in kept]
    assert all(p.read_bytes()[4:12] == old_id.encode() for p in paths)

    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", f"{new},{old}")
    crypto.keyring.cache_clear()
    dry = io.StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=dry)
    assert "etcd snapshots: 2 file(s) re-sealed" in dry.getvalue()
    assert all(p.read_bytes()[4:12] == old_id.encode() for p in paths)  # a dry run changes none
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "etcd snapshots: 2 file(s) re-sealed" in out.getvalue()
    assert all(p.read_bytes()[4:12] == new_id.encode() for p in paths)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in paths)
    again = io.StringIO()
    call_command("rotate_encryption_keys", stdout=again)
    assert "etcd snapshots: 0 file(s) re-sealed" in again.getvalue()

    # The old key can go: every file still opens to its bytes under the new key alone.
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", new)
    crypto.keyring.cache_clear()
    for snapshot, i in kept.items():
        assert etcd_snapshots.snapshot_bytes(snapshot) == f"snapshot {i}".encode() * 100


@pytest.mark.django_db(transaction=True)  # committed, so that the dump would show it
def test_a_snapshot_is_sealed_on_disk_and_opens_to_the_same_bytes(etcd_cluster: Cluster) -> None:
    secret = f"every-secret-{secrets.token_hex(8)}".encode()
    data = b"bbolt..." + secret * 1000
    snapshot = _store(etcd_cluster, data)
    path = etcd_snapshots.sealed_path(snapshot)
    assert path.is_relative_to(Path(settings.DATA_DIR))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert secret not in path.read_bytes()
    assert etcd_snapshots.snapshot_bytes(snapshot) == data
    assert snapshot.size == len(data) and snapshot.revision == 5 and snapshot.total_keys == 2
    assert AuditEvent.objects.filter(action="etcd.snapshot.create").count() == 1
    assert secret not in database_dump()


def test_a_tampered_or_swapped_file_does_not_open(etcd_cluster: Cluster) -> None:
    one, other = _store(etcd_cluster, b"one" * 100), _store(etcd_cluster, b"two" * 100)
    blob = bytearray(etcd_snapshots.sealed_path(one).read_bytes())
    blob[-1] ^= 1
    etcd_snapshots.sealed_path(one).write_bytes(bytes(blob))
    with pytest.raises(Conflict, match="cannot be opened"):
        etcd_snapshots.snapshot_bytes(one)
    # A sealed file is bound to its row: another row's file under this name does not open.
    etcd_snapshots.sealed_path(one).write_bytes(etcd_snapshots.sealed_path(other).read_bytes())
    with pytest.raises(Conflict, match="cannot be opened"):
        etcd_snapshots.snapshot_bytes(one)
    etcd_snapshots.sealed_path(other).unlink()
    with pytest.raises(Conflict, match="missing"):
        etcd_snapshots.snapshot_bytes(other)


def test_retention_keeps_the_newest_and_removes_the_files_of_the_others(
    etcd_cluster: Cluster, django_capture_on_commit_callbacks: Any
) -> None:
    made = []
    for revision in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            made.append(_store(etcd_cluster, f"snap-{revision}".encode(), revision))
    kept = list(EtcdSnapshot.objects.filter(cluster=etcd_cluster))
    assert [s.revision for s in kept] == [4, 3, 2]
    for snapshot in made[:2]:
        assert not etcd_snapshots.sealed_path(snapshot).exists()
    for snapshot in kept:
        assert etcd_snapshots.sealed_path(snapshot).exists()
    assert AuditEvent.objects.filter(action="etcd.snapshot.prune").count() == 2


def test_the_api_lists_for_everyone_and_downloads_for_admins_only(
    etcd_cluster: Cluster, api_client: Callable[[str | None], Any]
) -> None:
    snapshot = _store(etcd_cluster, b"the snapshot")
    other = make_cluster("other")
    _store(other, b"another")
    listed = api_client("viewer").get(f"/api/v1/etcd-snapshots/?cluster={etcd_cluster.pk}")
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [row["id"] for row in rows] == [snapshot.pk]
    assert rows[0]["sha256"] == snapshot.sha256 and "token" not in rows[0]
    url = f"/api/v1/etcd-snapshots/{snapshot.pk}/download/"
    for persona in ("viewer", "operator"):
        assert api_client(persona).get(url).status_code == 403
    assert api_client(None).get(url).status_code in (401, 403)
    answer = api_client("admin").get(url)
    assert answer.status_code == 200 and answer.content == b"the snapshot"
    assert answer["Cache-Control"] == "no-store"
    assert answer["Content-Disposition"].startswith('attachment; filename="snapshots-etcd-')
    [event] = AuditEvent.objects.filter(action="etcd.snapshot.download")
    assert event.actor_name == "admin" and event.cluster_id == etcd_cluster.pk
    bad = api_client("viewer").get("/api/v1/etcd-snapshots/?cluster=x")
    assert bad.status_code == 400 and "cluster" in bad.json()["errors"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"confirm": "snapshots"}, "snapshot"),
        ({"snapshot": "1", "confirm": "snapshots"}, "snapshot"),
        ({"snapshot": 999999, "confirm": "snapshots"}, "snapshot"),
        ({"snapshot": None}, "confirm"),
        ({"snapshot": None, "confirm": "Snapshots"}, "confirm"),
        ({"snapshot": None, "confirm": "snapshots", "force": True}, "force"),
    ],
)
def test_a_restore_is_refused_without_the_typed_name_or_a_snapshot_of_the_cluster(
    etcd_cluster: Cluster,
    api_client: Callable[[str | None], Any],
    params: dict[str, Any],
    field: str,
) -> None:
    issue_missing(etcd_cluster, actor=SETUP)
    snapshot = _store(etcd_cluster, b"the snapshot")
    if "snapshot" in params and params["snapshot"] is None:
        params = {**params, "snapshot": snapshot.pk}
    body = {"cluster": etcd_cluster.pk, "kind": "etcd-restore", "params": params}
    for path in ("/api/v1/jobs/plan/", "/api/v1/jobs/"):
        answer = api_client("operator").post(path, body, format="json")
        assert answer.status_code == 400, answer.json()
        assert field in answer.json()["errors"], answer.json()


def test_a_restore_preview_names_the_snapshot_and_never_reads_it(
    etcd_cluster: Cluster, api_client: Callable[[str | None], Any]
) -> None:
    issue_missing(etcd_cluster, actor=SETUP)
    snapshot = _store(etcd_cluster, b"the snapshot")
    etcd_snapshots.sealed_path(snapshot).unlink()  # a preview that read it would fail
    params = {"snapshot": snapshot.pk, "confirm": "snapshots"}
    body = {"cluster": etcd_cluster.pk, "kind": "etcd-restore", "params": params}
    answer = api_client("operator").post("/api/v1/jobs/plan/", body, format="json")
    assert answer.status_code == 200, answer.json()
    phases = answer.json()["plan"]["phases"]
    assert [p["name"] for p in phases] == ["stop", "restore", "start", "health"]
    restore = phases[1]["steps"][0]["commands"][0]
    assert restore["stdin"].startswith(f"etcd snapshot #{snapshot.pk} ")


def test_a_backup_preview_masks_the_client_key(
    etcd_cluster: Cluster, api_client: Callable[[str | None], Any]
) -> None:
    issue_missing(etcd_cluster, actor=SETUP)
    body = {"cluster": etcd_cluster.pk, "kind": "etcd-backup", "params": {}}
    answer = api_client("operator").post("/api/v1/jobs/plan/", body, format="json")
    assert answer.status_code == 200, answer.json()
    text = answer.content.decode()
    assert "PRIVATE KEY" not in text
    [step] = answer.json()["plan"]["phases"][0]["steps"]
    key = next(f for f in step["files"] if f["path"].endswith("client.key"))
    assert key["mode"] == "0600" and key["content"] == "********"


@pytest.mark.django_db(transaction=True)  # on_commit runs only for a real commit
def test_deleting_a_cluster_removes_its_snapshot_files_once_committed(
    etcd_cluster: Cluster,
) -> None:
    from django.db import transaction

    from nodes.services import delete_cluster

    other = make_cluster("keeps-its-snapshots")
    mine, theirs = _store(etcd_cluster, b"doomed snapshot"), _store(other, b"kept snapshot")
    directory = etcd_snapshots.sealed_path(mine).parent
    with transaction.atomic():  # the deletion inside a transaction that is then rolled back
        delete_cluster(etcd_cluster, SETUP)
        transaction.set_rollback(True)
    assert etcd_snapshots.snapshot_bytes(mine) == b"doomed snapshot"  # row and file kept

    # (delete() cleared the instance's pk although the deletion was rolled back: read it again.)
    delete_cluster(Cluster.objects.get(name="snapshots"), SETUP)
    assert not EtcdSnapshot.objects.filter(pk=mine.pk).exists()
    assert not directory.exists()
    assert etcd_snapshots.snapshot_bytes(theirs) == b"kept snapshot"
