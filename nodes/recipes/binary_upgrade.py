"""The ``binary-upgrade`` job: a binary-installed cluster to a new Kubernetes version, from the
release bundle of that version (pure, no Django; glue ``nodes.binary_jobs``).

Refused before anything runs (InputError naming ``version``): the same version, a downgrade, or
a skip of more than one minor version (the version skew policy: one minor at a time, as for
kubeadm clusters). Then:

1. ``plan``: the verdict, as a step the preview shows.
2. ``upload``: the new tarballs onto every node (in parallel) and ``sha256sum -c`` there; nothing
   running changes yet.
3. One phase per etcd member, one at a time: etcd and etcdctl installed from the bundle, then —
   while every member is healthy — ``systemctl restart etcd``, active and healthy again.
4. One phase per node, control-plane nodes first, then workers, one node at a time: the node's
   Kubernetes binaries installed, its services restarted in the start order, each active and
   healthy before the next.
5. ``clean``: the staging directories removed. The glue then records the cluster's version.

Step names carry the target version: another target runs them again.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import binary_install, upgrade
from nodes.recipes.binary_common import (
    DEFAULT_WAIT,
    ETCD,
    MAX_WAIT,
    BinaryCluster,
    check_inputs,
    etcd_nodes,
    node_order,
    read_said,
    refuse_unknown,
    restart_commands,
    whole_number,
)
from nodes.recipes.binary_rollout import ordered_services
from nodes.recipes.plan import ClusterSpec, Command, NodeTarget, Outcome, Phase, Plan, Step
from nodes.recipes.upgrade import parse_version, show

KIND = "binary-upgrade"
MUTATING = True
PARAMS = ("version", "wait_seconds")


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``version`` (required, v1.32.0 or 1.32.0: a bundle of it must be on the panel host) and
    ``wait_seconds`` (default 120)."""
    refuse_unknown(KIND, params, PARAMS)
    version = params.get("version")
    if not isinstance(version, str) or not version.strip():
        raise InputError("name the target version, such as v1.32.0", "version")
    return {
        "version": show(parse_version(version)),
        "wait_seconds": whole_number(params, "wait_seconds", DEFAULT_WAIT, 5, MAX_WAIT),
    }


def skew_verdict(current: str, target: str) -> str:
    """kubeadm's skew policy (one minor at a time, no downgrade), in the panel's words."""
    return upgrade.skew_verdict(current, target, tool="")


def plan(
    spec: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: tuple[BinaryCluster, binary_install.Bundle],
) -> Plan:
    validated = validate_params(params)
    wait = validated["wait_seconds"]
    cluster, bundle = inputs
    verdict = skew_verdict(spec.kubernetes_version, validated["version"])
    if show(parse_version(bundle.kubernetes_version)) != validated["version"]:
        raise InputError(
            f"the bundle holds {bundle.kubernetes_version}, not {validated['version']}", "version"
        )
    check_inputs(cluster)
    binary_install.check(cluster)
    layout, target = cluster.layout, validated["version"]
    phases = [
        Phase(
            "plan", (Step(f"skew {target}", None, read=lambda c: Outcome("succeeded", verdict)),)
        ),
        Phase(
            "upload",
            tuple(
                binary_install.upload_step(f"upload {bundle.id}", layout, n, bundle, n.services)
                for n in cluster.nodes
            ),
        ),
    ]
    for node in etcd_nodes(cluster):
        install = binary_install.install_command(layout, bundle, [ETCD], clean=False)
        commands = (install, *restart_commands(cluster, node, [ETCD], wait))
        step = Step(f"etcd {bundle.etcd_version}", node.name, commands, read_said)
        phases.append(Phase(f"upgrade etcd on {node.name}", (step,)))
    for node in node_order(cluster):
        services = ordered_services(cluster, node, (ETCD,))
        if not services:
            continue
        install = binary_install.install_command(layout, bundle, services, clean=False)
        commands = (install, *restart_commands(cluster, node, services, wait))
        step = Step(f"{' '.join(services)} {target}", node.name, commands, read_said)
        phases.append(Phase(f"upgrade {node.name}", (step,)))
    clean = Command(f"rm -rf {shlex.quote(layout.staging)}", timeout=120.0)
    phases.append(
        Phase(
            "clean", tuple(Step(f"clean staging {target}", n.name, (clean,)) for n in cluster.nodes)
        )
    )
    return Plan(KIND, tuple(phases))
