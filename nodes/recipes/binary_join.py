"""The ``binary-join`` job: a new worker of a binary-installed cluster, end to end on that node
only (pure, no Django; glue ``nodes.binary_jobs``).

The phases of ``binary-install`` (service user, upload and check of the tarballs, the binaries
installed), then the node's certificates and kubeconfigs (``binary-distribute-pki``'s step), its
units written with ``daemon-reload``, and kubelet and kube-proxy started and waited for as
``binary-start`` does. Nothing runs on any other node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import binary_install, binary_pki, binary_start
from nodes.recipes.binary_common import BinaryCluster, check_inputs, validate_wait
from nodes.recipes.plan import ClusterSpec, NodeTarget, Phase, Plan

KIND = "binary-join"
MUTATING = True


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``wait_seconds`` (default 120): how long kubelet and kube-proxy may take to run."""
    return validate_wait(KIND, params)


def check(cluster: BinaryCluster) -> None:
    if len(cluster.nodes) != 1:
        raise InputError("binary-join joins exactly one worker: name one node", "nodes")
    node = cluster.nodes[0]
    if node.target.role != "worker":
        raise InputError(
            f"{node.name} is a {node.target.role} node: binary-join joins workers", "nodes"
        )


def plan(
    spec: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: tuple[BinaryCluster, binary_install.Bundle],
) -> Plan:
    wait = validate_params(params)["wait_seconds"]
    cluster, bundle = inputs
    check(cluster)
    check_inputs(cluster)
    node = cluster.nodes[0]
    phases = (
        *binary_install.install_phases(cluster, bundle, cluster.nodes),
        Phase(binary_pki.PHASE, (binary_pki.pki_step(cluster, node),)),
        binary_start.units_phase(cluster, cluster.nodes),
        *binary_start.start_phases(cluster, cluster.nodes, wait),
    )
    return Plan(KIND, phases)
