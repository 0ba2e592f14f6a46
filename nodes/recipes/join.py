"""The ``join`` job: new nodes added to a running cluster, touching only them and the init node.

Phases, in order:

1. ``apiserver certificates``: on the worker, the SAN check the glue made of the apiserver
   certificates against the new topology; fails with Go's x509 error (as kubectl would print
   it) when a new control-plane address is missing.
2. ``probe`` and ``preflight``: the preflight checks on the new nodes.
3. ``pki``: the new nodes' bundles without the files kubeadm join makes itself.
4. ``upload-certs`` (control-plane joins only) and ``token`` on the init node: a fresh upload
   of the shared certificates with a usable certificate key, the usable token in the cluster.
5. ``join <node>`` for each new control-plane node, one at a time; ``join workers`` in parallel.
6. ``labels and taints`` of the new nodes, from the init node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import bootstrap, kubeadm_join
from nodes.recipes.kubeadm_join import KubeadmInputs
from nodes.recipes.plan import ClusterSpec, NodeTarget, Outcome, Phase, Plan, Step

KIND = "join"
MUTATING = True
PARAMS = (kubeadm_join.IGNORE_PARAM,)
SAN_PHASE = "apiserver certificates"
SAN_STEP = "check the apiserver certificate SANs"


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    for key in params:
        if key not in PARAMS:
            raise InputError(f"join has no parameter {key!r}", key)
    ignored = kubeadm_join.validate_ignored(params.get(kubeadm_join.IGNORE_PARAM))
    return {kubeadm_join.IGNORE_PARAM: ignored} if ignored else {}


def san_phase(problems: Sequence[str], checked: int) -> Phase:
    """A worker step that fails with the SAN problems found (Go's x509 errors), if any."""
    if problems:
        outcome = Outcome(
            "failed",
            "the apiserver certificates do not cover the new topology: "
            + "; ".join(problems)
            + " (renew the apiserver certificates on the Certificates tab first)",
        )
    else:
        outcome = Outcome(
            "succeeded", f"{checked} names checked: every apiserver certificate covers them"
        )
    return Phase(SAN_PHASE, (Step(SAN_STEP, None, (), lambda context: outcome),))


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: KubeadmInputs,
    san_problems: Sequence[str] = (),
    san_checked: int = 0,
) -> Plan:
    """``nodes``: the new nodes only (the init node is reached by name for the token and the
    certificate upload, and must not be among them)."""
    params = validate_params(params)
    if not nodes:
        raise InputError("name the new nodes to join", "nodes")
    for node in nodes:
        if node.name == inputs.init_node:
            raise InputError(
                f"{node.name} runs kubeadm init: the bootstrap job sets it up", "nodes"
            )
        if node.role not in ("control-plane", "worker"):
            raise InputError(f"{node.name} is an {node.role} node; kubeadm joins none", "nodes")
        if node.name in inputs.joined:
            raise InputError(f"{node.name} has joined already", "nodes")
    init = inputs.init_node
    phases: list[Phase] = [san_phase(san_problems, san_checked)]
    phases.extend(
        kubeadm_join.preflight_phases(cluster, nodes, params.get(kubeadm_join.IGNORE_PARAM, []))
    )
    pki = kubeadm_join.pki_phase(nodes, inputs, [n.name for n in nodes])
    if pki is not None:
        phases.append(pki)
    if any(node.role == "control-plane" for node in nodes):
        step = kubeadm_join.upload_certs_step(init, inputs.init_config, inputs.certificate_key_id)
        phases.append(Phase(bootstrap.UPLOAD_PHASE, (step,)))
    token = kubeadm_join.token_step(init, inputs.token_id, inputs.token_config)
    phases.append(Phase(bootstrap.TOKEN_PHASE, (token,)))
    phases.extend(kubeadm_join.join_phases(nodes, inputs))
    labels = kubeadm_join.labels_phase(init, nodes, inputs)
    if labels is not None:
        phases.append(labels)
    return Plan(KIND, tuple(phases))
