"""The etcd job kinds — external-etcd, etcd-backup, etcd-restore — joined to the inventory and PKI.

The recipes (``nodes.recipes.external_etcd``, ``nodes.recipes.etcd_backup``) say what runs; this
module hands them what they cannot know: each member's certificate files from the stored PKI,
the panel's etcd client certificate, a stored snapshot. These kinds act on every etcd member of
the cluster, whichever nodes the launch named: an etcd cluster is configured, backed up and
restored as a whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobKind, ParamField, RunResult, register
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import etcd_snapshots, ssh
from nodes.models import Cluster, EtcdSnapshot, Node
from nodes.recipes import etcd_backup, external_etcd
from nodes.recipes.plan import Outcome, Phase, Plan, Step, StepContext
from nodes.targets import target_for


def _glue() -> Any:
    from nodes import jobs  # the facts/preflight glue: cluster_spec, node_target, _Connector

    return jobs


def _members(cluster: Cluster) -> list[Node]:
    role = "etcd" if cluster.etcd_topology == "external" else "control-plane"
    return list(
        Node.objects.filter(cluster=cluster, role=role).select_related("cluster").order_by("name")
    )


# external-etcd


def _member_files(cluster: Cluster, members: list[Node]) -> dict[str, dict[str, Any]]:
    from pki.services.certificates import nodes_bundle_files

    return {
        name: {
            path: external_etcd.MemberFile(f.content, f.mode)
            for path, f in bundle.items()
            if path in external_etcd.MEMBER_FILES
        }
        for name, bundle in nodes_bundle_files(cluster, members).items()
    }


def _external_plan(job: Any) -> tuple[Plan, list[Node]]:
    cluster = job.cluster
    glue = _glue()
    if cluster.etcd_topology != "external":
        # Before the PKI is asked for files a stacked cluster's members do not have.
        external_etcd.plan(glue.cluster_spec(cluster), [], job.params, {})
    members = _members(cluster)
    plan = external_etcd.plan(
        glue.cluster_spec(cluster),
        [glue.node_target(n) for n in members],
        job.params,
        _member_files(cluster, members),
    )
    return plan, members


# etcd-backup


class _FreshAttempt:
    """The job's reporter, without the steps of the attempt being retried: a backup taken
    again is a new snapshot, and the earlier attempt's files on the host are gone."""

    def __init__(self, reporter: Any) -> None:
        self._reporter = reporter

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reporter, name)


def panel_client(cluster: Cluster) -> etcd_backup.PanelClient:
    """The panel's etcd client certificate (``apiserver-etcd-client``) and the etcd CA."""
    from pki.services.certificates import active_cas, active_tree

    row = active_tree(cluster).get(("apiserver-etcd-client", None))
    ca = active_cas(cluster).get("etcd/ca")
    if row is None or ca is None:
        raise InputError(
            f"cluster {cluster.name} has no etcd client certificate yet; issue the missing "
            "certificates first",
            "cluster",
        )
    return etcd_backup.PanelClient(
        ca.certificate_pem.encode(), row.certificate_pem.encode(), row.private_key_pem.encode()
    )


def _work_dir(job: Any) -> str:
    # Root-owned, made fresh (rm -rf, then mkdir -m 0700) by the step; unique per job.
    return f"/var/tmp/clusterpanel-etcd-backup-{job.pk or 'preview'}"  # noqa: S108


def _backup_plan(
    job: Any, store: Callable[[StepContext], Outcome] | None
) -> tuple[Plan, list[Node]]:
    cluster = job.cluster
    glue = _glue()
    members = _members(cluster)
    plan = etcd_backup.backup_plan(
        glue.cluster_spec(cluster),
        [glue.node_target(n) for n in members],
        panel_client(cluster),
        _work_dir(job),
    )
    keep = Step("copy to the panel, encrypted", None, read=store or (lambda c: Outcome("failed")))
    return Plan(plan.kind, (*plan.phases, Phase("store", (keep,)))), members


def _preview_backup(job: Any) -> dict[str, Any]:
    return _backup_plan(job, None)[0].preview()


def _store_step(job: Any, members: list[Node]) -> Callable[[StepContext], Outcome]:
    """Runs on the worker after the snapshot step: copies the snapshot back over SSH, removes
    the work directory on the host, seals and keeps the snapshot."""
    first = members[0]

    def store(context: StepContext) -> Outcome:
        taken = context.earlier.get(("snapshot", "snapshot", first.name))
        if taken is None or taken.status != "succeeded":
            return Outcome("failed", "no snapshot was taken")
        status = dict(taken.data)
        limit = int(settings.CLUSTERPANEL_ETCD_SNAPSHOT_MAX_BYTES)
        try:
            session = _glue()._Connector({first.name: first}, Actor.for_job(job.launched_by))(
                target_for(first)
            )
            try:
                data = session.download(str(status["path"]), max_bytes=limit)
            finally:
                session.run(etcd_backup.cleanup_command(str(status["work_dir"])), timeout=60)
                session.close()
        except ssh.SSHError as error:
            return Outcome("failed", f"copying the snapshot from {first.name} failed: {error}")
        if len(data) != int(status["size"]):
            return Outcome(
                "failed",
                f"the copy has {len(data)} bytes, the snapshot on {first.name} {status['size']}",
            )
        # Worker steps run in the runner's own thread, which has its database connection.
        snapshot = etcd_snapshots.store_snapshot(
            job.cluster, data, status, actor=Actor.for_job(job.launched_by), job_id=job.pk
        )
        return Outcome(
            "succeeded",
            f"snapshot #{snapshot.pk} kept encrypted: {snapshot.size} bytes, revision "
            f"{snapshot.revision}, {snapshot.total_keys} keys, sha256 {snapshot.sha256[:16]}…",
            {"snapshot": snapshot.pk, "sha256": snapshot.sha256},
        )

    return store


def _run_backup(job: Any, reporter: Any) -> RunResult:
    members = _members(job.cluster)
    if not members:
        raise InputError(f"cluster {job.cluster.name} has no etcd members", "nodes")
    plan, members = _backup_plan(job, _store_step(job, members))
    execution = _glue().execute_plan(job, _FreshAttempt(reporter), plan, members)
    return RunResult(execution.status, execution.explanation)


# etcd-restore


def _chosen_snapshot(job: Any) -> EtcdSnapshot:
    cluster = job.cluster
    params = job.params
    snapshot = EtcdSnapshot.objects.filter(cluster=cluster, pk=params["snapshot"]).first()
    if snapshot is None:
        raise InputError(
            f"cluster {cluster.name} has no etcd snapshot {params['snapshot']}", "snapshot"
        )
    if params["confirm"] != cluster.name:
        raise InputError(
            f"type the cluster's name, {cluster.name}, exactly to confirm that its etcd data "
            "is replaced by the snapshot",
            "confirm",
        )
    return snapshot


def _restore_plan(job: Any, data: bytes | None) -> tuple[Plan, list[Node], EtcdSnapshot]:
    """``data`` None: a preview (no snapshot bytes read)."""
    snapshot = _chosen_snapshot(job)
    glue = _glue()
    members = _members(job.cluster)
    label = (
        f"etcd snapshot #{snapshot.pk} of {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC "
        f"({snapshot.size} bytes, sha256 {snapshot.sha256[:16]}…)"
    )
    plan = etcd_backup.restore_plan(
        glue.cluster_spec(job.cluster),
        [glue.node_target(n) for n in members],
        data if data is not None else b"",
        label,
        f"job{job.pk or 0}",
    )
    return plan, members, snapshot


def _preview_restore(job: Any) -> dict[str, Any]:
    return _restore_plan(job, None)[0].preview()


def _run_restore(job: Any, reporter: Any) -> RunResult:
    snapshot = _chosen_snapshot(job)
    data = etcd_snapshots.snapshot_bytes(snapshot)
    plan, members, _ = _restore_plan(job, data)
    audit.record(
        "etcd.snapshot.restore",
        Actor.for_job(job.launched_by),
        obj=snapshot,
        cluster=job.cluster,
        details={
            "snapshot": snapshot.pk,
            "job": job.pk,
            "sha256": hashlib.sha256(data).hexdigest(),
            "members": [m.name for m in members],
        },
    )
    execution = _glue().execute_plan(job, reporter, plan, members)
    return RunResult(execution.status, execution.explanation)


def _kinds() -> Mapping[str, JobKind]:
    preview_external, run_external = _glue().planned(_external_plan)
    return {
        external_etcd.KIND: JobKind(
            name=external_etcd.KIND,
            label="External etcd",
            mutating=external_etcd.MUTATING,
            validate_params=external_etcd.validate_params,
            preview=preview_external,
            run=run_external,
            param_fields=(
                ParamField(
                    "binary",
                    f"etcd executable on the members (default {external_etcd.DEFAULT_BINARY})",
                ),
            ),
        ),
        etcd_backup.BACKUP_KIND: JobKind(
            name=etcd_backup.BACKUP_KIND,
            label="etcd backup",
            mutating=etcd_backup.MUTATING_BACKUP,
            validate_params=etcd_backup.validate_backup_params,
            preview=_preview_backup,
            run=_run_backup,
        ),
        etcd_backup.RESTORE_KIND: JobKind(
            name=etcd_backup.RESTORE_KIND,
            label="etcd restore",
            mutating=etcd_backup.MUTATING_RESTORE,
            validate_params=etcd_backup.validate_restore_params,
            preview=_preview_restore,
            run=_run_restore,
            param_fields=(
                ParamField("snapshot", "Snapshot id", number=True),
                ParamField("confirm", "Type the cluster's name to confirm"),
            ),
        ),
    }


def register_kinds() -> None:
    for kind in _kinds().values():
        register(kind)
