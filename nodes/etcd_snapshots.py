"""etcd snapshots kept by the panel: stored sealed, listed, downloaded by admins, pruned.

A snapshot holds every Secret of the cluster, so its plain bytes never touch the panel's disk
or database: they are sealed in memory (``crypto.seal_bytes``, AES-256-GCM under the panel's
encryption key, bound to the row's token) and written as ``<data dir>/etcd-snapshots/<cluster
id>/<token>.sealed`` (0600, directories 0700). Why a file and not the database: see
``nodes.models.EtcdSnapshot``.

Key rotation: ``rotate_encryption_keys`` re-seals these files too (``reseal_files``, registered
with ``clusterpanel.security.sealed_files``); until it has run, a file sealed under an older key
opens as long as that key stays configured (the key id is in the file's header).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from clusterpanel.errors import Conflict
from clusterpanel.security import audit, crypto, sealed_files
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.models import Cluster, EtcdSnapshot

SNAPSHOT_DIR = "etcd-snapshots"


def snapshot_root() -> Path:
    return Path(settings.DATA_DIR) / SNAPSHOT_DIR


def sealed_path(snapshot: EtcdSnapshot) -> Path:
    return snapshot_root() / str(snapshot.cluster_id) / f"{snapshot.token}.sealed"


def _context(token: str) -> bytes:
    return b"etcd-snapshot:" + token.encode()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, 0600, in 0700 directories."""
    for directory in (snapshot_root(), path.parent):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def store_snapshot(
    cluster: Cluster, data: bytes, status: Mapping[str, Any], *, actor: Actor, job_id: int | None
) -> EtcdSnapshot:
    """Seal and keep ``data`` (a snapshot ``etcdctl snapshot status`` accepted), then prune the
    cluster's oldest snapshots beyond its retention count. Audited."""
    token = secrets.token_hex(16)
    snapshot = EtcdSnapshot(
        cluster=cluster,
        token=token,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        revision=int(status.get("revision", 0)),
        total_keys=int(status.get("total_keys", 0)),
        etcd_hash=int(status.get("hash", 0)),
        member=str(status.get("endpoint", ""))[:255],
        job_id=job_id,
    )
    path = sealed_path(snapshot)
    _write_private(path, crypto.seal_bytes(data, _context(token)))
    try:
        with transaction.atomic():
            snapshot.save()
            audit.record(
                "etcd.snapshot.create",
                actor,
                obj=snapshot,
                cluster=cluster,
                details={
                    "snapshot": snapshot.pk,
                    "size": snapshot.size,
                    "sha256": snapshot.sha256,
                    "revision": snapshot.revision,
                    "job": job_id,
                },
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    prune(cluster, actor=actor)
    return snapshot


def prune(cluster: Cluster, *, actor: Actor) -> list[int]:
    """Delete the snapshots beyond the cluster's retention count (newest kept); their files
    go once the deletion is committed. Returns the deleted ids."""
    keep = max(1, int(cluster.etcd_snapshot_retention))
    with transaction.atomic():
        old = list(EtcdSnapshot.objects.filter(cluster=cluster).order_by("-taken_at", "-pk")[keep:])
        if not old:
            return []
        paths = [sealed_path(s) for s in old]
        ids = [s.pk for s in old]
        EtcdSnapshot.objects.filter(pk__in=ids).delete()
        audit.record(
            "etcd.snapshot.prune",
            actor,
            obj=cluster,
            cluster=cluster,
            details={"deleted": ids, "kept": keep},
        )

        def remove() -> None:
            for path in paths:
                path.unlink(missing_ok=True)

        transaction.on_commit(remove)
    return ids


def remove_cluster_files_on_commit(cluster: Cluster) -> None:
    """Remove the cluster's snapshot files once the transaction deleting it commits (a rolled
    back deletion keeps them, as it keeps the rows)."""
    directory = snapshot_root() / str(cluster.pk)

    def remove() -> None:
        shutil.rmtree(directory, ignore_errors=True)

    transaction.on_commit(remove)


def snapshot_bytes(snapshot: EtcdSnapshot) -> bytes:
    """The plain snapshot, checked against its recorded SHA-256 (``Conflict`` when the file is
    missing, does not open, or is not the snapshot the row describes)."""
    try:
        blob = sealed_path(snapshot).read_bytes()
    except FileNotFoundError:
        raise Conflict(f"the file of etcd snapshot {snapshot.pk} is missing") from None
    try:
        data = crypto.open_bytes(blob, _context(snapshot.token))
    except crypto.DecryptionError as error:
        raise Conflict(f"etcd snapshot {snapshot.pk} cannot be opened: {error}") from None
    if hashlib.sha256(data).hexdigest() != snapshot.sha256:
        raise Conflict(f"etcd snapshot {snapshot.pk} does not match its recorded SHA-256")
    return data


def download_snapshot(actor: Actor, snapshot: EtcdSnapshot) -> bytes:
    """The plain snapshot for an admin to download, audited (403 for other roles)."""
    require_permission(
        actor.user,
        "download_etcd_snapshots",
        "an etcd snapshot holds every Secret of the cluster: it is an admin download",
    )
    data = snapshot_bytes(snapshot)
    audit.record(
        "etcd.snapshot.download",
        actor,
        obj=snapshot,
        cluster=snapshot.cluster,
        details={"snapshot": snapshot.pk, "size": snapshot.size, "sha256": snapshot.sha256},
    )
    return data


def reseal_files(ring: crypto.KeyRing, dry_run: bool) -> int:
    """Re-seal every snapshot file not under the primary key (written atomically, 0600); a
    missing file is left to ``snapshot_bytes`` to report. Returns how many (would) change."""
    changed = 0
    for snapshot in EtcdSnapshot.objects.order_by("pk").iterator():
        path = sealed_path(snapshot)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            continue
        if sealed_files.sealed_key_id(blob) == ring.primary:
            continue
        changed += 1
        if not dry_run:
            context = _context(snapshot.token)
            _write_private(path, ring.seal_bytes(ring.open_bytes(blob, context), context))
    return changed
