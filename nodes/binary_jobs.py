"""The job kinds of binary-installed clusters joined to the inventory, the layout and the PKI:
binary-install, binary-distribute-pki, binary-start, binary-join, binary-cert-rollout and
binary-upgrade.

The recipes (``nodes.recipes.binary_*``) are pure; this module hands them plain data: the
layout's directories (``ClusterBinarySettings.layout()``), the start order and each node's
services (``pki.domain.binary_layout``), the etcd members, each node's files
(``nodes.binary_files.node_files``) and the release bundle (``nodes.binary_bundle``, checked
against its ``SHA256SUMS`` on the panel before anything is sent). Every kind here refuses a
kubeadm cluster (``JobKind.cluster_flavor``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobFailed, JobKind, ParamField, RunResult, register
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import binary_bundle, binary_files
from nodes.models import Cluster, ClusterFlavor, EtcdTopology, Node, NodeRole
from nodes.recipes import (
    binary_install,
    binary_join,
    binary_pki,
    binary_rollout,
    binary_start,
    binary_upgrade,
)
from nodes.recipes.binary_common import BinaryCluster, BinaryNode, Layout, Probes
from nodes.recipes.plan import Outcome, Phase, Plan, Step, StepContext
from pki.domain import binary_layout


def _glue() -> Any:
    from nodes import jobs  # job_nodes, node_target, cluster_spec, execute_plan

    return jobs


def layout_of(cluster: Cluster) -> binary_layout.BinaryLayout:
    from pki.models import ClusterBinarySettings

    found = ClusterBinarySettings.objects.filter(cluster=cluster).first()
    return found.layout() if found is not None else binary_layout.BinaryLayout()


def etcd_members(cluster: Cluster) -> list[Node]:
    """The etcd members: the etcd nodes of an external etcd, else the control-plane nodes."""
    role = (
        NodeRole.ETCD
        if cluster.etcd_topology == EtcdTopology.EXTERNAL
        else (NodeRole.CONTROL_PLANE)
    )
    return list(Node.objects.filter(cluster=cluster, role=role).order_by("name"))


def _audit_log_dir() -> str:
    """Where the rendered kube-apiserver unit writes its audit log (the renderers decide)."""
    try:
        from pki.domain.binary_spec import (  # type: ignore[import-not-found,unused-ignore]
            AUDIT_LOG,
        )
    except ImportError:
        return ""
    return str(AUDIT_LOG.log_dir)


def binary_cluster(cluster: Cluster, nodes: Sequence[Node], *, files: bool) -> BinaryCluster:
    """The recipes' view of the cluster and the job's nodes (with their files when ``files``)."""
    glue, layout = _glue(), layout_of(cluster)
    members = etcd_members(cluster)
    member_ids = {m.pk for m in members}
    recipe_nodes = tuple(
        BinaryNode(
            glue.node_target(node),
            binary_layout.services_for(node.role, etcd_member=node.pk in member_ids),
            tuple(binary_files.node_files(cluster, node)) if files else (),
        )
        for node in nodes
    )
    ca_keys = {layout.key(base) for base in binary_layout.CA_FILES.values()}
    ca_keys.add(layout.key(binary_layout.SERVICE_ACCOUNT))
    return BinaryCluster(
        layout=Layout(
            install_prefix=layout.install_prefix,
            cert_dir=layout.cert_dir,
            config_dir=layout.config_dir,
            service_user=layout.service_user,
            etcd_data_dir=layout.etcd_data_dir,
            unit_dir=layout.unit_dir,
            audit_log_dir=_audit_log_dir(),
        ),
        start_order=binary_layout.START_ORDER,
        nodes=recipe_nodes,
        etcd_members=tuple(str(m.address) for m in members),
        probes=Probes(
            etcd_ca=layout.ca_pem(binary_layout.ETCD_CA),
            etcd_cert=layout.pem("etcd-healthcheck-client"),
            etcd_key=layout.key("etcd-healthcheck-client"),
            admin_kubeconfig=layout.kubeconfig(binary_layout.ADMIN),
        ),
        ca_keys=frozenset(ca_keys),
    )


def _bundle(version: str, *, run: bool, field: str) -> binary_install.Bundle:
    """The release bundle; on a run every tarball is checked first (a mismatch fails the job
    before anything is sent), a preview only finds the files."""
    try:
        return binary_bundle.load_bundle(version, verify=run)
    except JobFailed as error:
        if run:
            raise
        raise InputError(str(error), field) from None


# What each kind's recipe gets, on a preview (run False) and on a run.
Inputs = Callable[[Any, Sequence[Node], bool], Any]


def _files_only(job: Any, nodes: Sequence[Node], run: bool) -> Any:
    return binary_cluster(job.cluster, nodes, files=True)


def _services_only(job: Any, nodes: Sequence[Node], run: bool) -> Any:
    return binary_cluster(job.cluster, nodes, files=False)


def _install_inputs(job: Any, nodes: Sequence[Node], run: bool) -> Any:
    cluster = binary_cluster(job.cluster, nodes, files=False)
    return cluster, _bundle(job.cluster.kubernetes_version, run=run, field="cluster")


def _join_inputs(job: Any, nodes: Sequence[Node], run: bool) -> Any:
    if len(nodes) != 1:
        raise InputError("binary-join joins exactly one worker: name one node", "nodes")
    cluster = binary_cluster(job.cluster, nodes, files=True)
    return cluster, _bundle(job.cluster.kubernetes_version, run=run, field="cluster")


def _upgrade_inputs(job: Any, nodes: Sequence[Node], run: bool) -> Any:
    target = binary_upgrade.validate_params(job.params)["version"]
    # The skew policy before the bundle is looked for: a refused target needs no bundle.
    binary_upgrade.skew_verdict(job.cluster.kubernetes_version, target)
    cluster = binary_cluster(job.cluster, nodes, files=False)
    return cluster, _bundle(target, run=run, field="version")


def _plan(module: Any, inputs: Inputs, job: Any, nodes: Sequence[Node], run: bool) -> Plan:
    glue = _glue()
    spec = glue.cluster_spec(job.cluster)
    targets = [glue.node_target(n) for n in nodes]
    plan: Plan = module.plan(spec, targets, job.params, inputs(job, nodes, run))
    return plan


def _record_upgrade(job: Any) -> Callable[[StepContext], Outcome]:
    def record(context: StepContext) -> Outcome:
        target = binary_upgrade.validate_params(job.params)["version"]
        cluster = Cluster.objects.get(pk=job.cluster_id)
        before = cluster.kubernetes_version
        cluster.kubernetes_version = target if before.startswith("v") else target[1:]
        cluster.save(update_fields=["kubernetes_version"])
        Node.objects.filter(
            cluster=cluster, role__in=[NodeRole.CONTROL_PLANE, NodeRole.WORKER]
        ).filter(pk__in=job.target_node_ids).update(
            kubelet_version=target, updated_at=timezone.now()
        )
        audit.record(
            "cluster.upgrade",
            Actor.for_job(job.launched_by),
            obj=cluster,
            cluster=cluster,
            details={"job": job.pk, "from": before, "to": cluster.kubernetes_version},
        )
        return Outcome("succeeded", f"cluster {cluster.name} upgraded from {before} to {target}")

    return record


def _with_record(module: Any, job: Any, plan: Plan) -> Plan:
    if module is not binary_upgrade:
        return plan
    target = binary_upgrade.validate_params(job.params)["version"]
    step = Step(f"record {target} as the cluster's version", None, read=_record_upgrade(job))
    return Plan(plan.kind, (*plan.phases, Phase("record", (step,))))


def _preview(module: Any, inputs: Inputs) -> Callable[[Any], dict[str, Any]]:
    def preview(job: Any) -> dict[str, Any]:
        nodes = _glue().job_nodes(job)
        return _with_record(module, job, _plan(module, inputs, job, nodes, False)).preview()

    return preview


def _run(module: Any, inputs: Inputs) -> Callable[[Any, Any], RunResult]:
    def run(job: Any, reporter: Any) -> RunResult:
        nodes = _glue().job_nodes(job)
        plan = _with_record(module, job, _plan(module, inputs, job, nodes, True))
        execution = _glue().execute_plan(job, reporter, plan, nodes)
        return RunResult(execution.status, execution.explanation)

    return run


def _wait_deadline(params: Mapping[str, Any]) -> int:
    # Each node waits at most a few times wait_seconds per service; an hour on top for SSH.
    wait = params.get("wait_seconds", 120)
    return 3600 + 60 * int(wait if isinstance(wait, int) else 120)


WAIT = ParamField(
    "wait_seconds",
    "Seconds each unit may take to become active and healthy (default 120)",
    number=True,
)


def _kinds() -> list[JobKind]:
    from nodes.jobs import authorize_ca_keys

    table: list[tuple[Any, str, Inputs, Any, tuple[ParamField, ...]]] = [
        (binary_install, "Install the release binaries", _install_inputs, None, ()),
        (binary_pki, "Distribute the certificates (binary)", _files_only, authorize_ca_keys, ()),
        (binary_start, "Start the services in dependency order", _files_only, None, (WAIT,)),
        (binary_join, "Join a worker (binary)", _join_inputs, None, (WAIT,)),
        (
            binary_rollout,
            "Roll out renewed certificates, one node at a time (binary)",
            _files_only,
            authorize_ca_keys,
            (WAIT,),
        ),
        (
            binary_upgrade,
            "Upgrade the binaries, one node at a time",
            _upgrade_inputs,
            None,
            (ParamField("version", "Target version (e.g. v1.32.0)"), WAIT),
        ),
    ]
    return [
        JobKind(
            name=module.KIND,
            label=label,
            mutating=module.MUTATING,
            validate_params=module.validate_params,
            preview=_preview(module, inputs),
            run=_run(module, inputs),
            deadline=_wait_deadline,
            authorize=authorize,
            param_fields=fields,
            cluster_flavor=ClusterFlavor.BINARY,
        )
        for module, label, inputs, authorize, fields in table
    ]


def register_kinds() -> None:
    for kind in _kinds():
        register(kind)
