"""The ``binary-start`` job: the units written and the services started in dependency order
(pure, no Django; glue ``nodes.binary_jobs``).

1. ``units``: on every node, its unit files written (root's, 0644 as given), then
   ``systemctl daemon-reload``; the step's name carries a digest of the units.
2. One phase per group of the start order — etcd; kube-apiserver; kube-controller-manager and
   kube-scheduler; kubelet and kube-proxy — with a step on each node that runs a service of the
   group, all those nodes in parallel (etcd members must start together: a member is ready only
   once a quorum of them runs). Each service: ``systemctl enable --now <unit>``, then
   ``systemctl is-active --quiet`` polled until it runs (``wait_seconds``), then its health
   probe polled where one exists (etcd: ``etcdctl endpoint health`` with the health-check client
   certificate; kube-apiserver: ``kubectl get --raw /livez`` with the admin kubeconfig against
   the node's own address). A later group starts only once every node's step of the group
   before succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.binary_common import (
    BinaryCluster,
    BinaryNode,
    check_inputs,
    digest,
    group_services,
    read_said,
    start_commands,
    units_step,
    validate_wait,
)
from nodes.recipes.plan import ClusterSpec, NodeTarget, Phase, Plan, Step

KIND = "binary-start"
MUTATING = True


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``wait_seconds`` (default 120): how long each unit may take to become active and healthy."""
    return validate_wait(KIND, params)


def units_phase(cluster: BinaryCluster, nodes: Sequence[BinaryNode]) -> Phase:
    steps = []
    for node in nodes:
        units = [f for f in node.files if cluster.layout.is_unit(f.path)]
        paths = {f.path for f in units}
        missing = [s for s in node.services if cluster.layout.unit(s) not in paths]
        if missing:
            raise InputError(f"{node.name} has no unit file for {', '.join(missing)}", "nodes")
        steps.append(units_step(f"write units {digest(units)}", cluster, node))
    return Phase("units", tuple(steps))


def start_phases(
    cluster: BinaryCluster, nodes: Sequence[BinaryNode], wait: int
) -> tuple[Phase, ...]:
    phases = []
    for group in cluster.start_order:
        steps = []
        for node in nodes:
            services = group_services(node, group)
            if services:
                commands = start_commands(cluster, node, services, wait)
                steps.append(
                    Step(f"start {' '.join(services)}", node.name, tuple(commands), read_said)
                )
        if steps:
            phases.append(Phase(f"start {' '.join(group)}", tuple(steps)))
    return tuple(phases)


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
    return Plan(
        KIND, (units_phase(inputs, inputs.nodes), *start_phases(inputs, inputs.nodes, wait))
    )
