"""The ``binary-cert-rollout`` job: renewed certificates onto the nodes of a binary-installed
cluster, the services restarted one node at a time (pure, no Django; glue ``nodes.binary_jobs``).

1. ``distribute-pki``: every node's new files written, the replaced ones backed up, as
   ``binary-distribute-pki`` does (all nodes in parallel: a written file changes nothing until
   its service restarts).
2. One phase per etcd member, one member at a time: while every member is healthy (the others
   keep quorum), ``systemctl restart etcd``, then active and healthy again before the next.
3. One phase per node, control-plane nodes first, then workers, one node at a time: its other
   services restarted in the start order (kube-apiserver, then controller-manager and scheduler,
   then kubelet and kube-proxy), each active — and healthy where a probe exists — before the
   next; a node's phase begins only once the node before is healthy.

Steps carry a digest of the node's files, so a retry after another renewal runs them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import binary_pki
from nodes.recipes.binary_common import (
    ETCD,
    BinaryCluster,
    BinaryNode,
    check_inputs,
    digest,
    etcd_nodes,
    node_order,
    read_said,
    restart_commands,
    validate_wait,
)
from nodes.recipes.plan import ClusterSpec, NodeTarget, Phase, Plan, Step

KIND = "binary-cert-rollout"
MUTATING = True


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``wait_seconds`` (default 120): how long each restarted unit may take to be healthy."""
    return validate_wait(KIND, params)


def ordered_services(cluster: BinaryCluster, node: BinaryNode, skip: Sequence[str]) -> list[str]:
    return [
        service
        for group in cluster.start_order
        for service in group
        if service in node.services and service not in skip
    ]


def restart_phases(cluster: BinaryCluster, wait: int, tag: Mapping[str, str]) -> list[Phase]:
    """etcd members one at a time, then every node's other services, one node at a time."""
    phases = []
    for node in etcd_nodes(cluster):
        commands = restart_commands(cluster, node, [ETCD], wait)
        step = Step(f"restart etcd {tag[node.name]}", node.name, tuple(commands), read_said)
        phases.append(Phase(f"restart etcd on {node.name}", (step,)))
    for node in node_order(cluster):
        services = ordered_services(cluster, node, (ETCD,))
        if not services:
            continue
        commands = restart_commands(cluster, node, services, wait)
        step = Step(
            f"restart {' '.join(services)} {tag[node.name]}", node.name, tuple(commands), read_said
        )
        phases.append(Phase(f"restart {node.name}", (step,)))
    return phases


def plan(
    spec: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: BinaryCluster,
) -> Plan:
    wait = validate_params(params)["wait_seconds"]
    check_inputs(inputs)
    for node in inputs.nodes:
        if not node.services:
            raise InputError(f"{node.name} runs no service of the cluster", "nodes")
    write = Phase(binary_pki.PHASE, tuple(binary_pki.pki_step(inputs, n) for n in inputs.nodes))
    tags = {n.name: digest(binary_pki.pki_files(inputs, n)) for n in inputs.nodes}
    return Plan(KIND, (write, *restart_phases(inputs, wait, tags)))
