"""The nodes app's job kinds — facts and preflight — run by the engine over SSH.

This module joins three layers the job runner in ``clusterpanel.jobs`` knows nothing
about: the recipes (what to run and how to read it, no Django), the executor and SSH
(how to run it, no Django) and the inventory (which nodes, which credentials, which
pinned keys). ``NodesConfig.ready`` registers the kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from clusterpanel.errors import Conflict
from clusterpanel.jobs.registry import JobKind, RunResult, register
from clusterpanel.security.audit import Actor
from nodes import executor, host_keys, ssh
from nodes.models import Cluster, Node
from nodes.recipes import facts, preflight
from nodes.recipes.plan import ClusterSpec, NodeTarget, Outcome, Plan
from nodes.targets import target_for

# The keys of a node's stored facts: those of the facts recipe, whichever recipe read them.
FACT_KEYS = tuple(facts.facts_from_sections({}))

RECIPES: tuple[tuple[ModuleType, str], ...] = (
    (facts, "Gather facts"),
    (preflight, "Preflight checks"),
)


def cluster_spec(cluster: Cluster) -> ClusterSpec:
    return ClusterSpec(
        name=cluster.name,
        kubernetes_version=cluster.kubernetes_version,
        pod_subnet=cluster.pod_subnet,
        service_subnet=cluster.service_subnet,
        container_runtime=cluster.container_runtime,
        control_plane_endpoint=cluster.control_plane_endpoint,
        etcd_topology=cluster.etcd_topology,
    )


def node_target(node: Node) -> NodeTarget:
    return NodeTarget(name=node.name, address=str(node.address), role=node.role)


def job_nodes(job: Any) -> list[Node]:
    """The job's target nodes, in name order (the order of the plan)."""
    return list(
        Node.objects.filter(cluster_id=job.cluster_id, id__in=job.target_node_ids)
        .select_related("cluster")
        .order_by("name")
    )


def build_plan(recipe: ModuleType, job: Any, nodes: Sequence[Node]) -> Plan:
    plan: Plan = recipe.plan(cluster_spec(job.cluster), [node_target(n) for n in nodes], job.params)
    return plan


class _Connector:
    """Opens sessions for the executor and keeps the inventory's host-key state true.

    A changed key is recorded on the node (it shows red with both fingerprints); a key
    learned under the cluster's trust on first use is pinned and audited. Called from
    the executor's threads, so each call ends its own database connection.
    """

    def __init__(self, nodes: Mapping[str, Node], actor: Actor) -> None:
        self.nodes = nodes
        self.actor = actor

    def __call__(self, target: ssh.Target) -> ssh.Session:
        node = self.nodes[target.name]
        try:
            session = ssh.Session.open(target)
        except ssh.HostKeyMismatch as error:
            presented = error.presented
            if presented:
                self._in_thread(lambda: host_keys.record_presented_key(node, presented))
            raise
        learned = session.learned_host_key
        if learned is not None:
            try:
                self._in_thread(lambda: host_keys.learn_host_key(node, learned, self.actor))
            except Conflict as error:
                session.close()
                raise ssh.SSHError(str(error)) from None
        return session

    @staticmethod
    def _in_thread(write: Any) -> None:
        try:
            write()
        finally:
            close_old_connections()


def _store_outcomes(
    nodes: Mapping[str, Node], outcomes: Mapping[tuple[str, str, str | None], Outcome]
) -> None:
    """Facts read by a step (the facts step, or the preflight probe, a superset) are kept
    on the node, so the node page shows what the host was last seen to be."""
    for (_, _, node_name), outcome in outcomes.items():
        if (
            node_name is None
            or node_name not in nodes
            or outcome.status != "succeeded"
            or not outcome.data
        ):
            continue
        if all(key in outcome.data for key in FACT_KEYS):
            found = {key: outcome.data[key] for key in FACT_KEYS}
            host_keys.record_facts(nodes[node_name], found)


def _preview(recipe: ModuleType) -> Any:
    def preview(job: Any) -> dict[str, Any]:
        return build_plan(recipe, job, job_nodes(job)).preview()

    return preview


def _run(recipe: ModuleType) -> Any:
    def run(job: Any, reporter: Any) -> RunResult:
        nodes = {node.name: node for node in job_nodes(job)}
        plan = build_plan(recipe, job, list(nodes.values()))
        targets = {name: target_for(node) for name, node in nodes.items()}
        execution = executor.execute(
            plan,
            targets,
            reporter,
            max_parallel=int(settings.CLUSTERPANEL_JOB_MAX_PARALLEL_HOSTS),
            deadline=reporter.deadline_at,
            connect=_Connector(nodes, Actor.for_job(job.launched_by)),
        )
        _store_outcomes(nodes, execution.outcomes)
        return RunResult(execution.status, execution.explanation)

    return run


def register_kinds() -> None:
    for recipe, label in RECIPES:
        register(
            JobKind(
                name=recipe.KIND,
                label=label,
                mutating=recipe.MUTATING,
                validate_params=recipe.validate_params,
                preview=_preview(recipe),
                run=_run(recipe),
            )
        )
    # The etcd kinds (external-etcd, etcd-backup, etcd-restore) reuse this module's glue.
    from nodes import etcd_jobs

    etcd_jobs.register_kinds()
