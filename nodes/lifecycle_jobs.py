"""The lifecycle job kinds of a running cluster — remove-node, upgrade — joined to the inventory.

The recipes (``nodes.recipes.remove_node``, ``nodes.recipes.upgrade``) say what runs; this module
hands them what they cannot know (which node runs kubectl, etcd's members, the panel's etcd
client certificate, the nodes' facts) and adds the last step that records the outcome in the
inventory (``Node.joined_at``, ``Node.kubelet_version``, the cluster's version).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobKind, ParamField, RunResult, register
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.models import Cluster, Node, NodeRole
from nodes.recipes import install, remove_node, upgrade
from nodes.recipes.plan import Outcome, Phase, Plan, Step, StepContext


def _glue() -> Any:
    from nodes import jobs  # cluster_spec, node_target, _Connector

    return jobs


def joined_control_planes(cluster: Cluster) -> list[Node]:
    """The joined control-plane nodes, the first control-plane node (the init node) first."""
    from pki.services.bootstrap.kubeadm_files import init_node

    first = init_node(cluster)
    nodes = list(
        Node.objects.filter(
            cluster=cluster, role=NodeRole.CONTROL_PLANE, joined_at__isnull=False
        ).order_by("pk")
    )
    return sorted(nodes, key=lambda n: (first is None or n.pk != first.pk, n.pk))


def kubectl_node(cluster: Cluster, leaving: Node | None = None) -> Node | None:
    """Where kubectl runs: the init node, or the first other joined control-plane node when the
    init node is the one leaving."""
    for node in joined_control_planes(cluster):
        if leaving is None or node.pk != leaving.pk:
            return node
    return None


# remove-node


def _leaving(job: Any) -> Node:
    nodes = _glue().job_nodes(job)
    if len(nodes) != 1:
        raise InputError("remove-node removes exactly one node: name one", "nodes")
    return nodes[0]


def _members(cluster: Cluster) -> list[Node]:
    if cluster.etcd_topology == "external":
        return list(Node.objects.filter(cluster=cluster, role=NodeRole.ETCD).order_by("name"))
    return joined_control_planes(cluster)


def _removal_plan(
    job: Any, record: Callable[[StepContext], Outcome] | None
) -> tuple[Plan, list[Node]]:
    cluster, glue = job.cluster, _glue()
    node = _leaving(job)
    if node.role != NodeRole.ETCD and node.joined_at is None:
        raise InputError(
            f"{node.name} has not joined cluster {cluster.name}: nothing to remove", "nodes"
        )
    runner = kubectl_node(cluster, node) if node.role != NodeRole.ETCD else None
    members = _members(cluster)
    removal = remove_node.Removal(
        node=glue.node_target(node),
        kubectl_node=glue.node_target(runner) if runner is not None else None,
        control_planes=tuple(glue.node_target(n) for n in joined_control_planes(cluster)),
        etcd_members=tuple(glue.node_target(n) for n in members),
    )
    spec = glue.cluster_spec(cluster)
    remove_node.check(spec, removal)  # before the PKI is asked for a client certificate
    client = None
    if remove_node.is_etcd_member(spec, removal.node):
        from nodes.etcd_jobs import panel_client

        client = panel_client(cluster)
    work_dir = f"/var/tmp/clusterpanel-remove-node-{job.pk or 'preview'}"  # noqa: S108
    plan = remove_node.plan(spec, removal, job.params, client, work_dir)
    keep = Step(
        f"forget that {node.name} joined", None, read=record or (lambda c: Outcome("failed"))
    )
    involved = [node, *([runner] if runner else []), *members]
    return Plan(plan.kind, (*plan.phases, Phase("record", (keep,)))), involved


def _record_removal(job: Any, node: Node) -> Callable[[StepContext], Outcome]:
    def record(context: StepContext) -> Outcome:
        forced = any(
            outcome.data.get("drain_failed") for outcome in context.earlier.values() if outcome.data
        )
        Node.objects.filter(pk=node.pk).update(
            joined_at=None, kubelet_version="", updated_at=timezone.now()
        )
        audit.record(
            "node.remove",
            Actor.for_job(job.launched_by),
            obj=node,
            cluster=job.cluster,
            details={"job": job.pk, "node": node.name, "forced_after_failed_drain": forced},
        )
        message = f"{node.name} removed from cluster {job.cluster.name}; its inventory row kept"
        if forced:
            message += (
                " — its drain FAILED and the removal went on because force was asked: pods that "
                "could not be evicted were stopped without their disruption budget"
            )
        return Outcome("succeeded", message)

    return record


def _preview_removal(job: Any) -> dict[str, Any]:
    return _removal_plan(job, None)[0].preview()


def _run_removal(job: Any, reporter: Any) -> RunResult:
    node = _leaving(job)
    plan, involved = _removal_plan(job, _record_removal(job, node))
    unique = list({n.pk: n for n in involved}.values())
    execution = _glue().execute_plan(job, reporter, plan, unique)
    return RunResult(execution.status, execution.explanation)


def authorize_removal(actor: Actor, job: Any) -> None:
    """Operators may remove workers; a control-plane or etcd node changes etcd's membership and
    the control plane: admins only."""
    roles = set(
        Node.objects.filter(cluster_id=job.cluster_id, id__in=job.target_node_ids).values_list(
            "role", flat=True
        )
    )
    if roles - {NodeRole.WORKER}:
        require_permission(
            actor.user,
            "remove_control_plane_nodes",
            "removing a control-plane or etcd node changes etcd's membership: only admins may; "
            "operators may remove workers",
        )


# upgrade


def _manager(node: Node) -> str:
    try:
        return install.package_manager(node.facts or None, node.name)
    except InputError:
        return ""  # refused by the recipe, after the version checks


def _upgrade_plan(
    job: Any, record: Callable[[StepContext], Outcome] | None
) -> tuple[Plan, list[Node]]:
    cluster, glue = job.cluster, _glue()
    cps = joined_control_planes(cluster)
    workers = list(
        Node.objects.filter(
            cluster=cluster, role=NodeRole.WORKER, joined_at__isnull=False
        ).order_by("name")
    )
    members = _members(cluster)
    # The version checks first: before the PKI is asked for the etcd client certificate.
    params = upgrade.validate_params(job.params)
    upgrade.skew_verdict(cluster.kubernetes_version, params["version"])
    client = None
    if members:
        from nodes.etcd_jobs import panel_client

        client = panel_client(cluster)
    when = job.created_at or timezone.now()
    nodes = [*cps, *workers]
    spec = upgrade.Upgrade(
        control_planes=tuple(glue.node_target(n) for n in cps),
        workers=tuple(glue.node_target(n) for n in workers),
        etcd_members=tuple(glue.node_target(n) for n in members),
        managers={n.name: _manager(n) for n in nodes},
        client=client,
        stamp=when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
        kubelets={n.name: n.kubelet_version for n in nodes},
    )
    plan = upgrade.plan(glue.cluster_spec(cluster), spec, params)
    keep = Step(
        f"record {params['version']} as the cluster's version",
        None,
        read=record or (lambda c: Outcome("failed")),
    )
    return Plan(plan.kind, (*plan.phases, Phase("record", (keep,)))), [*nodes, *members]


def _record_upgrade(job: Any) -> Callable[[StepContext], Outcome]:
    def record(context: StepContext) -> Outcome:
        verified = next(
            (o for (phase, _, _), o in context.earlier.items() if phase == "verify"), None
        )
        if verified is None or verified.status != "succeeded":
            return Outcome("failed", "not every node reports the target version")
        target = upgrade.validate_params(job.params)["version"]
        kubelets = dict(verified.data.get("kubelets", {}))
        cluster = Cluster.objects.get(pk=job.cluster_id)
        before = cluster.kubernetes_version
        for name, version in kubelets.items():
            Node.objects.filter(cluster=cluster, name=name).update(
                kubelet_version=version, updated_at=timezone.now()
            )
        # The cluster's own spelling (with or without the leading v).
        cluster.kubernetes_version = target if before.startswith("v") else target[1:]
        cluster.save(update_fields=["kubernetes_version"])
        audit.record(
            "cluster.upgrade",
            Actor.for_job(job.launched_by),
            obj=cluster,
            cluster=cluster,
            details={"job": job.pk, "from": before, "to": cluster.kubernetes_version},
        )
        return Outcome(
            "succeeded",
            f"cluster {cluster.name} upgraded from {before} to {cluster.kubernetes_version}: "
            f"all {len(kubelets)} nodes report it",
        )

    return record


def _preview_upgrade(job: Any) -> dict[str, Any]:
    return _upgrade_plan(job, None)[0].preview()


def _run_upgrade(job: Any, reporter: Any) -> RunResult:
    plan, involved = _upgrade_plan(job, _record_upgrade(job))
    unique = list({n.pk: n for n in involved}.values())
    execution = _glue().execute_plan(job, reporter, plan, unique)
    return RunResult(execution.status, execution.explanation)


def _kinds() -> list[JobKind]:
    return [
        JobKind(
            name=remove_node.KIND,
            label="Remove a node",
            mutating=remove_node.MUTATING,
            validate_params=remove_node.validate_params,
            preview=_preview_removal,
            run=_run_removal,
            authorize=authorize_removal,
            param_fields=(
                ParamField("drain_timeout", "Drain timeout (s, default 300)", number=True),
                ParamField(
                    "grace_period", "Pod grace period (s, default -1: the pod's own)", number=True
                ),
                ParamField("force", "Go on after a failed drain (true/false, default false)"),
            ),
        ),
        JobKind(
            name=upgrade.KIND,
            label="Upgrade the cluster",
            mutating=upgrade.MUTATING,
            validate_params=upgrade.validate_params,
            preview=_preview_upgrade,
            run=_run_upgrade,
            deadline=6 * 3600,
            param_fields=(
                ParamField("version", "Target version (e.g. v1.32.0)"),
                ParamField("batch_percent", "Workers per batch (%, default 20)", number=True),
                ParamField("drain_timeout", "Drain timeout (s, default 300)", number=True),
                ParamField("drain_retries", "Drain retries (default 1)", number=True),
                ParamField("grace_period", "Pod grace period (s, default -1)", number=True),
                ParamField("offline_bundle", "Offline bundle directory (optional)"),
            ),
        ),
    ]


def register_kinds() -> None:
    for kind in _kinds():
        register(kind)
