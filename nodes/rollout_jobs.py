"""The ``cert-rollout`` job kind joined to the PKI: each node's files as the panel now holds them
(after a renewal) and the serial its apiserver must serve once restarted.

The recipe (``nodes.recipes.cert_rollout``) says what runs; the glue of ``nodes.jobs`` runs it.
Who may launch it is decided as for ``distribute-pki``: control-plane bundles carry the CA keys,
so only admins roll out to control-plane nodes; operators may roll out to workers (kubelet.conf).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.jobs.registry import JobKind, ParamField, register
from nodes.models import Node, NodeRole
from nodes.recipes import cert_rollout
from nodes.recipes.distribute_pki import BundleFile


def rollout_inputs(job: Any, nodes: Sequence[Node]) -> dict[str, cert_rollout.NodeRollout]:
    from pki.services.certificates import active_tree, nodes_bundle_files

    tree = active_tree(job.cluster)
    # External etcd members are not rolled out by this kind.
    rolled = [n for n in nodes if n.role in (NodeRole.CONTROL_PLANE, NodeRole.WORKER)]
    bundles = nodes_bundle_files(job.cluster, rolled, include_super_admin=False)
    found = {}
    for node in rolled:
        files = bundles[node.name]
        if node.role == NodeRole.WORKER:
            files = {p: f for p, f in files.items() if p == "kubelet.conf"}
        serial = ""
        if node.role == NodeRole.CONTROL_PLANE:
            row = tree.get(("apiserver", node.name))
            serial = row.serial.upper() if row is not None else ""
        found[node.name] = cert_rollout.NodeRollout(
            {path: BundleFile(f.content, f.mode) for path, f in files.items()}, serial
        )
    return found


def _deadline(params: Mapping[str, Any]) -> int:
    # Each control-plane node waits at most a few times wait_seconds; an hour on top for SSH.
    return 3600 + 30 * int(params.get("wait_seconds", cert_rollout.DEFAULT_WAIT))


def register_kinds() -> None:
    from nodes import jobs

    recipe = jobs.Recipe(
        cert_rollout,
        "Roll out renewed certificates",
        inputs=rollout_inputs,
        authorize=jobs.authorize_ca_keys,
    )
    register(
        JobKind(
            name=cert_rollout.KIND,
            label=recipe.label,
            mutating=cert_rollout.MUTATING,
            validate_params=cert_rollout.validate_params,
            preview=jobs._preview(recipe),
            run=jobs._run(recipe),
            deadline=_deadline,
            authorize=recipe.authorize,
            param_fields=(
                ParamField(
                    "wait_seconds",
                    "Seconds each wait may take (a container gone or back, /livez, the new serial)",
                    number=True,
                ),
            ),
        )
    )
