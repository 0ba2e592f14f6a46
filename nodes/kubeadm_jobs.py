"""The kubeadm job kinds — bootstrap, join — joined to the inventory, the PKI and the tokens.

The recipes (``nodes.recipes.bootstrap``, ``nodes.recipes.join``) say what runs; this module
hands them what only the panel holds: each node's bundle, the rendered kubeadm files with the
panel's bootstrap token and certificate key, which nodes joined already. A preview reads no
secret and makes nothing (the files are stand-ins of the same paths and modes); the run, on the
worker, first makes what is missing — a certificate key with at least an hour left, a token
with at least an hour left — so that nothing stale is ever used, then renders the files.

After the run, every node whose ``kubeadm init`` or ``kubeadm join`` step succeeded (in this
attempt or the one it retried) is marked joined, with the cluster's version as its kubelet's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from django.utils import timezone

from clusterpanel.errors import InputError
from clusterpanel.jobs.registry import JobKind, ParamField, RunResult, register
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.models import Cluster, Node, NodeRole
from nodes.recipes import bootstrap, health_access, join, kubeadm_join
from nodes.recipes.distribute_pki import BundleFile
from nodes.recipes.kubeadm_join import KubeadmInputs
from nodes.recipes.plan import Outcome, Plan
from pki.domain import health_identity

# What a preview writes in place of a secret file: the preview shows the path, the mode and
# "********", never a content, so nothing secret needs to be read for it.
PREVIEW_CONTENT = b"rendered when the job runs\n"
BOOTSTRAP_REFUSED = (
    "bootstrap copies the cluster's CA keys onto the control-plane nodes and uses the "
    "certificate key: only admins may run it"
)
JOIN_CONTROL_PLANE_REFUSED = (
    "joining a control-plane node copies the CA keys onto it and uses the certificate key: "
    "only admins may; operators may join workers"
)


def _glue() -> Any:
    from nodes import jobs

    return jobs


def _kube_nodes(cluster: Cluster) -> list[Node]:
    return list(
        Node.objects.filter(cluster=cluster, role__in=(NodeRole.CONTROL_PLANE, NodeRole.WORKER))
        .select_related("cluster")
        .order_by("name")
    )


def _init_node(cluster: Cluster) -> Node:
    from pki.services.bootstrap.kubeadm_files import init_node

    node = init_node(cluster)
    if node is None:
        raise InputError(f"cluster {cluster.name} has no control-plane node", "nodes")
    return node


def _bundles(cluster: Cluster, nodes: Sequence[Node]) -> dict[str, dict[str, BundleFile]]:
    bundles: dict[str, dict[str, BundleFile]] = _glue().cluster_bundles(cluster, nodes)
    return bundles


def _token_config(cluster: Cluster, token: Any) -> bytes:
    """An InitConfiguration holding only the panel's token, for ``kubeadm token create
    --config`` (its TTL what is left of the panel's record, so both expire together)."""
    from pki.domain.kubeadm_config import api_version_for
    from pki.domain.tokens import format_go_duration
    from pki.domain.yaml import dump_document

    if token.expires_at is None:
        ttl = timedelta(0)
    else:
        left = token.expires_at - timezone.now()
        ttl = timedelta(seconds=max(1, int(left.total_seconds() + 0.999)))
    entry: dict[str, Any] = {
        "token": token.value,
        "ttl": format_go_duration(ttl),
        "usages": list(token.usages),
        "groups": list(token.groups),
    }
    if token.description:
        entry["description"] = token.description
    document = {
        "apiVersion": api_version_for(cluster.kubernetes_version),
        "kind": "InitConfiguration",
        "bootstrapTokens": [entry],
    }
    return dump_document(document).encode()


def _inputs(
    job: Any,
    nodes: Sequence[Node],
    joining: Sequence[Node],
    labelled: Sequence[Node],
    *,
    secrets: bool,
    upload_certs: bool = True,
) -> KubeadmInputs:
    """``nodes``: those the plan writes the PKI on; ``joining``: those it joins; ``labelled``:
    those it labels and taints."""
    from pki.services.bootstrap import join_commands, kubeadm_files
    from pki.services.bootstrap.bootstrap_tokens import usable_join_token

    cluster = job.cluster
    init = _init_node(cluster)
    common: dict[str, Any] = {
        "init_node": init.name,
        "joined": frozenset(
            Node.objects.filter(cluster=cluster, joined_at__isnull=False).values_list(
                "name", flat=True
            )
        ),
        "bundles": _bundles(cluster, nodes),
        "labels": {n.name: dict(n.labels or {}) for n in labelled if n.labels},
        "taints": {n.name: list(n.taints) for n in labelled if n.taints},
        # The bootstrap applies it after init; harmless for the other plans, which ignore it.
        "health_rbac": health_identity.rbac_manifest().encode(),
        "ignored": tuple(job.params.get(kubeadm_join.IGNORE_PARAM, ())),
    }
    if not secrets:
        token = usable_join_token(cluster)
        key = join_commands.usable_certificate_key(cluster)
        return KubeadmInputs(
            **common,
            init_config=PREVIEW_CONTENT,
            certificate_key_id=str(key.pk) if key else "new",
            token_id=token.token_id if token else "new",
            token_config=PREVIEW_CONTENT,
            join_configs={n.name: PREVIEW_CONTENT for n in joining},
        )
    actor = Actor.for_job(job.launched_by)
    # A key or a token with less than an hour left is never used: a fresh one is made (a key
    # only when the certificates are uploaded: a worker's join needs none).
    key = join_commands.ensure_certificate_key(cluster, actor=actor)[0] if upload_certs else None
    token = usable_join_token(cluster) or join_commands.new_join_token(cluster, actor=actor)
    # The init file carries the certificate key: rendered only when the certificates are
    # uploaded (a worker's join, open to operators, needs neither).
    init_config = (
        kubeadm_files.kubeadm_config_for(cluster, init, actor=actor).text.encode()
        if upload_certs
        else b""
    )
    configs = {
        n.name: kubeadm_files.kubeadm_config_for(cluster, n, actor=actor).text.encode()
        for n in joining
    }
    return KubeadmInputs(
        **common,
        init_config=init_config,
        certificate_key_id=str(key.pk) if key else "",
        token_id=token.token_id,
        token_config=_token_config(cluster, token),
        join_configs=configs,
    )


def mark_joined(
    cluster: Cluster, outcomes: Mapping[tuple[str, str, str | None], Outcome]
) -> list[str]:
    """Nodes whose init or join step succeeded: ``joined_at`` (when not set yet) and the
    kubelet's version (the cluster's, which install pinned)."""
    names = sorted(
        {
            node
            for (phase, step, node), outcome in outcomes.items()
            if node is not None
            and outcome.status == "succeeded"
            and (
                (phase == bootstrap.INIT_PHASE and step == "kubeadm init")
                or step == kubeadm_join.JOIN_STEP
            )
        }
    )
    now = timezone.now()
    nodes = Node.objects.filter(cluster=cluster, name__in=names)
    nodes.filter(joined_at__isnull=True).update(joined_at=now)
    nodes.update(kubelet_version=cluster.kubernetes_version)
    return names


# bootstrap


def _bootstrap_plan(job: Any, *, secrets: bool) -> tuple[Plan, list[Node]]:
    cluster = job.cluster
    glue = _glue()
    nodes = _kube_nodes(cluster)
    init = _init_node(cluster)
    joining = [n for n in nodes if n.pk != init.pk and n.joined_at is None]
    # Only the nodes that join get a join file (others' would make nothing but audit rows).
    inputs = _inputs(job, nodes, joining, nodes, secrets=secrets)
    plan = bootstrap.plan(
        glue.cluster_spec(cluster), [glue.node_target(n) for n in nodes], job.params, inputs
    )
    return plan, nodes


def _preview_bootstrap(job: Any) -> dict[str, Any]:
    return _bootstrap_plan(job, secrets=False)[0].preview()


def _run_bootstrap(job: Any, reporter: Any) -> RunResult:
    plan, nodes = _bootstrap_plan(job, secrets=True)
    execution = _glue().execute_plan(job, reporter, plan, nodes)
    mark_joined(job.cluster, execution.outcomes)
    return RunResult(execution.status, execution.explanation)


def authorize_bootstrap(actor: Actor, job: Any) -> None:
    require_permission(actor.user, "download_ca_keys", BOOTSTRAP_REFUSED)


# join


def san_problems(cluster: Cluster, nodes: Sequence[Node]) -> tuple[list[str], int]:
    """The x509 errors kubectl would print for each new control-plane node's address against
    its apiserver certificate (the Certificates tab's check), and how many names were checked."""
    from pki.domain.x509 import check_host
    from pki.services.certificates import active_tree

    tree = active_tree(cluster)
    problems: list[str] = []
    checked = 0
    for node in nodes:
        if node.role != NodeRole.CONTROL_PLANE:
            continue
        row = tree.get(("apiserver", node.name))
        if row is None:
            problems.append(f"{node.name} has no apiserver certificate yet (issue it first)")
            continue
        for host in (str(node.address), cluster.endpoint_host):
            if not host:
                continue
            checked += 1
            outcome = check_host(row.certificate, host)
            if not outcome.covered:
                problems.append(f"{node.name}: {outcome.message}")
    return problems, checked


def _join_nodes(job: Any) -> list[Node]:
    nodes = _glue().job_nodes(job)
    refused = [n.name for n in nodes if n.joined_at is not None]
    if refused:
        raise InputError(f"{', '.join(refused)} joined already; join adds new nodes only", "nodes")
    return nodes


def _join_plan(job: Any, *, secrets: bool) -> tuple[Plan, list[Node]]:
    cluster = job.cluster
    glue = _glue()
    nodes = _join_nodes(job)
    init = _init_node(cluster)
    if init.joined_at is None:
        raise InputError(
            f"cluster {cluster.name} is not bootstrapped yet ({init.name} has not run "
            "kubeadm init): run the bootstrap job first",
            "nodes",
        )
    control_plane = any(n.role == NodeRole.CONTROL_PLANE for n in nodes)
    inputs = _inputs(job, nodes, nodes, nodes, secrets=secrets, upload_certs=control_plane)
    problems, checked = san_problems(cluster, nodes)
    plan = join.plan(
        glue.cluster_spec(cluster),
        [glue.node_target(n) for n in nodes],
        job.params,
        inputs,
        problems,
        checked,
    )
    return plan, [*nodes, init]


def _preview_join(job: Any) -> dict[str, Any]:
    return _join_plan(job, secrets=False)[0].preview()


def _run_join(job: Any, reporter: Any) -> RunResult:
    plan, nodes = _join_plan(job, secrets=True)
    execution = _glue().execute_plan(job, reporter, plan, nodes)
    mark_joined(job.cluster, execution.outcomes)
    return RunResult(execution.status, execution.explanation)


def authorize_join(actor: Actor, job: Any) -> None:
    roles = set(
        Node.objects.filter(cluster_id=job.cluster_id, id__in=job.target_node_ids).values_list(
            "role", flat=True
        )
    )
    if NodeRole.CONTROL_PLANE in roles:
        require_permission(actor.user, "download_ca_keys", JOIN_CONTROL_PLANE_REFUSED)


IGNORE_FIELD = ParamField(
    kubeadm_join.IGNORE_PARAM, "Preflight checks to ignore (names, comma-separated)"
)


# health-access


def _health_access_node(job: Any) -> Node:
    """The control-plane node kubectl runs on: the init node when it is chosen (it is by
    default, all nodes being chosen), else the first chosen control-plane node."""
    chosen = [n for n in _glue().job_nodes(job) if n.role == NodeRole.CONTROL_PLANE]
    if not chosen:
        raise InputError(
            "choose a control-plane node: kubectl applies the role there with admin.conf",
            "nodes",
        )
    init = _init_node(job.cluster)
    return init if any(n.pk == init.pk for n in chosen) else chosen[0]


def _health_access_plan(job: Any) -> tuple[Plan, list[Node]]:
    node = _health_access_node(job)
    return health_access.plan(node.name, health_identity.rbac_manifest().encode()), [node]


def _kinds() -> Mapping[str, JobKind]:
    preview_health_access, run_health_access = _glue().planned(_health_access_plan)
    return {
        bootstrap.KIND: JobKind(
            name=bootstrap.KIND,
            label="Bootstrap the cluster (kubeadm init and joins)",
            mutating=bootstrap.MUTATING,
            validate_params=bootstrap.validate_params,
            preview=_preview_bootstrap,
            run=_run_bootstrap,
            deadline=3 * 3600,
            authorize=authorize_bootstrap,
            param_fields=(
                ParamField("cni_manifest", "CNI manifest (YAML text)", multiline=True),
                ParamField("cni_manifest_path", "or the CNI manifest's path on the init node"),
                IGNORE_FIELD,
            ),
        ),
        join.KIND: JobKind(
            name=join.KIND,
            label="Join new nodes",
            mutating=join.MUTATING,
            validate_params=join.validate_params,
            preview=_preview_join,
            run=_run_join,
            deadline=2 * 3600,
            authorize=authorize_join,
            param_fields=(IGNORE_FIELD,),
        ),
        health_access.KIND: JobKind(
            name=health_access.KIND,
            label="Grant the panel's health checks their role (get /livez, /readyz, /healthz)",
            mutating=health_access.MUTATING,
            validate_params=health_access.validate_params,
            preview=preview_health_access,
            run=run_health_access,
            deadline=600,
        ),
    }


def register_kinds() -> None:
    for kind in _kinds().values():
        register(kind)
