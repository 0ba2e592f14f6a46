"""The ``binary-distribute-pki`` job: each node's certificates, keys, kubeconfigs and configs
written into the binary layout (pure, no Django; glue ``nodes.binary_jobs``).

One phase with one step per node (all nodes in parallel). The files are the node's as the panel
builds them (absolute paths in the certificate and configuration directories; the unit files are
the ``binary-start`` job's), owned by root with the service user's group, so that a key of mode
0640 is readable by the service and no one else. As the kubeadm ``distribute-pki`` does, every
file that would be replaced by other content is first copied to
``<config_dir>/backup/<UTC timestamp>/<its path>`` (0700), and a file that already is the new one
is neither backed up nor written. The service user is created first when missing (``useradd
--system``, as binary-install does), so the files' group exists. Keys are secret files: the
preview and the log show their path, mode, size and sha256, never their content. A CA key
bound for a node that is not a control-plane node refuses the plan.

The step's name carries a digest of the files: after a renewal, a retry writes them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.binary_common import (
    BinaryCluster,
    BinaryNode,
    NodeFile,
    check_inputs,
    digest,
    refuse_unknown,
    write_files_step,
)
from nodes.recipes.plan import ClusterSpec, NodeTarget, Phase, Plan, Step

KIND = "binary-distribute-pki"
MUTATING = True
PHASE = "distribute-pki"


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """binary-distribute-pki takes no parameters."""
    refuse_unknown(KIND, params, ())
    return {}


def pki_files(cluster: BinaryCluster, node: BinaryNode) -> list[NodeFile]:
    """The node's files but its units."""
    return [f for f in node.files if not cluster.layout.is_unit(f.path)]


def pki_step(cluster: BinaryCluster, node: BinaryNode) -> Step:
    files = pki_files(cluster, node)
    if not files:
        raise InputError(f"{node.name} has no certificate to distribute", "nodes")
    name = f"write certificates {digest(files)}"
    return write_files_step(name, cluster.layout, node, files)


def plan(
    spec: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: BinaryCluster,
) -> Plan:
    validate_params(params)
    check_inputs(inputs)
    return Plan(KIND, (Phase(PHASE, tuple(pki_step(inputs, n) for n in inputs.nodes)),))
