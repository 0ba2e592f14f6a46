"""The nodes app's job kinds — facts, preflight, install, distribute-pki — run by the engine over
SSH.

This module joins three layers the job runner in ``clusterpanel.jobs`` knows nothing
about: the recipes (what to run and how to read it, no Django), the executor and SSH
(how to run it, no Django) and the inventory (which nodes, which credentials, which
pinned keys). ``NodesConfig.ready`` registers the kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from clusterpanel.errors import Conflict
from clusterpanel.jobs import registry
from clusterpanel.jobs.registry import JobKind, ParamField, RunResult, register
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes import executor, host_keys, ssh
from nodes.models import Cluster, ClusterFlavor, Node, NodeRole
from nodes.recipes import distribute_pki, facts, install, preflight
from nodes.recipes.plan import ClusterSpec, NodeTarget, Outcome, Plan
from nodes.targets import target_for

# The keys of a node's stored facts: those of the facts recipe, whichever recipe read them.
FACT_KEYS = tuple(facts.facts_from_sections({}))

# What a recipe gets besides the cluster, the nodes and the params: per node name, data the
# inventory or another app holds (stored facts, the PKI bundle), read in the web process for a
# preview and again in the worker for the run.
Inputs = Callable[[Any, Sequence[Node]], Mapping[str, Any]]


@dataclass(frozen=True)
class Recipe:
    module: ModuleType
    label: str
    inputs: Inputs | None = None
    authorize: Callable[[Actor, Any], None] | None = None
    param_fields: tuple[ParamField, ...] = ()


def stored_facts(job: Any, nodes: Sequence[Node]) -> dict[str, Any]:
    return {node.name: node.facts or None for node in nodes}


def bundle_files(job: Any, nodes: Sequence[Node]) -> dict[str, Any]:
    return cluster_bundles(job.cluster, nodes)


def cluster_bundles(
    cluster: Cluster, nodes: Sequence[Node]
) -> dict[str, dict[str, distribute_pki.BundleFile]]:
    """Each node's ``/etc/kubernetes`` files as the PKI builds them. ``super-admin.conf`` is not
    among them: kubeadm leaves it on the first control-plane node only, and the panel hands it
    out to admins as a download."""
    from pki.services.certificates import nodes_bundle_files

    bundles = nodes_bundle_files(cluster, nodes, include_super_admin=False)
    return {
        name: {path: distribute_pki.BundleFile(f.content, f.mode) for path, f in files.items()}
        for name, files in bundles.items()
    }


def authorize_ca_keys(actor: Actor, job: Any) -> None:
    """Control-plane and etcd bundles carry keys (the CA keys, keys etcd trusts): only a role that
    may download them may copy them onto machines, as for the bundle download. Workers' bundles
    hold no CA key: operators may distribute them."""
    roles = set(
        Node.objects.filter(cluster_id=job.cluster_id, id__in=job.target_node_ids).values_list(
            "role", flat=True
        )
    )
    if roles - {NodeRole.WORKER}:
        require_permission(
            actor.user,
            "download_ca_keys",
            "distributing the PKI to control-plane or etcd nodes copies the cluster's CA keys "
            "onto them: only admins may; operators may distribute to workers",
        )


RECIPES: tuple[Recipe, ...] = (
    Recipe(facts, "Gather facts"),
    Recipe(
        preflight,
        "Preflight checks",
        param_fields=(
            ParamField(
                preflight.IGNORE_PARAM,
                "Failed checks to ignore (names, comma-separated, or all; shown as warnings)",
                optional=True,
            ),
        ),
    ),
    Recipe(
        install,
        "Install the runtime and kubeadm",
        inputs=stored_facts,
        param_fields=(
            ParamField(
                "offline_bundle",
                "Offline bundle directory on the nodes (optional: then nothing is downloaded)",
            ),
        ),
    ),
    Recipe(
        distribute_pki,
        "Distribute the certificates",
        inputs=bundle_files,
        authorize=authorize_ca_keys,
    ),
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


def build_plan(recipe: Recipe | ModuleType, job: Any, nodes: Sequence[Node]) -> Plan:
    if isinstance(recipe, ModuleType):
        recipe = Recipe(recipe, recipe.KIND)
    spec, targets = cluster_spec(job.cluster), [node_target(n) for n in nodes]
    if recipe.inputs is None:
        plan: Plan = recipe.module.plan(spec, targets, job.params)
    else:
        plan = recipe.module.plan(spec, targets, job.params, recipe.inputs(job, nodes))
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


def _preview(recipe: Recipe) -> Any:
    def preview(job: Any) -> dict[str, Any]:
        return build_plan(recipe, job, job_nodes(job)).preview()

    return preview


def execute_plan(job: Any, reporter: Any, plan: Plan, nodes: Sequence[Node]) -> executor.Execution:
    """Run ``plan`` on ``nodes`` over SSH for ``job``, within its deadline, keeping the
    inventory's host-key state true (``_Connector``)."""
    by_name = {node.name: node for node in nodes}
    return executor.execute(
        plan,
        {name: target_for(node) for name, node in by_name.items()},
        reporter,
        max_parallel=int(settings.CLUSTERPANEL_JOB_MAX_PARALLEL_HOSTS),
        deadline=reporter.deadline_at,
        upload_seconds_per_mib=float(settings.CLUSTERPANEL_UPLOAD_SECONDS_PER_MIB),
        connect=_Connector(by_name, Actor.for_job(job.launched_by)),
    )


PlanBuilder = Callable[[Any], tuple[Plan, Sequence[Node]]]


def planned(
    build: PlanBuilder,
) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Any, Any], RunResult]]:
    """A kind's ``preview`` and ``run`` from the one function that builds its plan and the nodes
    it runs on: the preview shows the plan, the run executes it over SSH."""

    def preview(job: Any) -> dict[str, Any]:
        return build(job)[0].preview()

    def run(job: Any, reporter: Any) -> RunResult:
        plan, nodes = build(job)
        execution = execute_plan(job, reporter, plan, nodes)
        return RunResult(execution.status, execution.explanation)

    return preview, run


def _run(recipe: Recipe) -> Any:
    def run(job: Any, reporter: Any) -> RunResult:
        nodes = {node.name: node for node in job_nodes(job)}
        plan = build_plan(recipe, job, list(nodes.values()))
        execution = execute_plan(job, reporter, plan, list(nodes.values()))
        _store_outcomes(nodes, execution.outcomes)
        return RunResult(execution.status, execution.explanation)

    return run


# The kinds of this app that fit every cluster: facts read the host, whatever runs on it.
FLAVOR_FREE = frozenset({facts.KIND})


def register_kinds() -> None:
    before = {kind.name: kind for kind in registry.kinds()}
    for recipe in RECIPES:
        module = recipe.module
        register(
            JobKind(
                name=module.KIND,
                label=recipe.label,
                mutating=module.MUTATING,
                validate_params=module.validate_params,
                preview=_preview(recipe),
                run=_run(recipe),
                authorize=recipe.authorize,
                param_fields=recipe.param_fields,
            )
        )
    # The kinds that need more than a plan (panel-side work before, during or after the run)
    # reuse this module's glue: external-etcd, etcd-backup and etcd-restore; bootstrap and join
    # (kubeadm with the panel's PKI, token and certificate key); remove-node and upgrade;
    # cert-rollout (renewed certificates onto the nodes, the components restarted).
    # cert-scan (the nodes' certificates compared with the panel's ledger, findings kept).
    # The kinds of binary-installed clusters: binary-install … binary-upgrade.
    from nodes import (
        binary_jobs,
        etcd_jobs,
        kubeadm_jobs,
        lifecycle_jobs,
        rollout_jobs,
        scan_jobs,
    )

    modules = (etcd_jobs, kubeadm_jobs, lifecycle_jobs, rollout_jobs, scan_jobs, binary_jobs)
    for module in modules:
        module.register_kinds()
    # The one rule for the flavor: every kind registered here that names no flavor is a kubeadm
    # kind (it writes /etc/kubernetes, runs kubeadm or static pods) and refuses a binary cluster.
    for kind in registry.kinds():
        if before.get(kind.name) is kind or kind.cluster_flavor or kind.name in FLAVOR_FREE:
            continue
        register(replace(kind, cluster_flavor=ClusterFlavor.KUBEADM))
