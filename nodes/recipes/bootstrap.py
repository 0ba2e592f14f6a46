"""The ``bootstrap`` job: the whole cluster, from installed hosts to joined nodes.

Phases, in order (each stops the job when it fails; a retry resumes at the failed step, the
steps that succeeded are not run again):

1. ``probe`` and ``preflight``: the preflight job's checks on the nodes not joined yet; the
   gate fails on any failed check unless it is named in ``ignore_preflight_errors``.
2. ``pki``: each node's bundle from the panel's PKI (``distribute-pki``'s step: unchanged files
   are not written, replaced ones backed up); a joining node's without the files kubeadm join
   makes itself (``kubeadm_join.bundle_before_join``).
3. ``init`` on the init node (the first control-plane node): ``kubeadm init --config``, unless it
   ran there already; then ``health-rbac``: the read-only role of the panel's health identity
   (``clusterpanel:health``: get on /livez, /readyz, /healthz) and its binding, applied with
   admin.conf, the YAML on stdin.
4. ``upload-certs``: the shared certificates into ``kubeadm-certs`` with the panel's certificate
   key (the step named after the key's id).
5. ``token``: the panel's bootstrap token in the cluster (named after the token's id).
6. ``join <node>``: each other control-plane node, one phase per node, one at a time.
7. ``join workers``: every worker, in parallel.
8. ``cni``: the operator's CNI manifest applied on the init node (``cni_manifest``, the YAML
   text, or ``cni_manifest_path``, a file on the init node such as one of an offline bundle);
   without either, a note that pods need one.
9. ``labels and taints`` from the inventory, when any node has some.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import kubeadm_join
from nodes.recipes.kubeadm_join import KubeadmInputs
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
)

KIND = "bootstrap"
MUTATING = True
PARAMS = ("cni_manifest", "cni_manifest_path", kubeadm_join.IGNORE_PARAM)
MAX_CNI_MANIFEST = 2 * 1024 * 1024  # calico.yaml is about 300 KB, tigera-operator 1.5 MB
MAX_PATH = 1024
_PATH = re.compile(r"/[A-Za-z0-9._+@=:/-]*")

INIT_PHASE = "init"
HEALTH_RBAC_PHASE = "health-rbac"
HEALTH_RBAC_STEP = "apply the panel's health role"
UPLOAD_PHASE = "upload-certs"
TOKEN_PHASE = "token"  # noqa: S105 (a phase name)
CNI_PHASE = "cni"
CNI_STEP = "apply the CNI manifest"


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    for key in params:
        if key not in PARAMS:
            raise InputError(f"bootstrap has no parameter {key!r}", key)
    found: dict[str, Any] = {}
    text = params.get("cni_manifest")
    if text not in (None, ""):
        if not isinstance(text, str):
            raise InputError("must be the manifest's YAML text", "cni_manifest")
        if "\0" in text:
            raise InputError("must be text (no NUL bytes)", "cni_manifest")
        if len(text.encode()) > MAX_CNI_MANIFEST:
            raise InputError(
                f"at most {MAX_CNI_MANIFEST // 1024 // 1024} MiB; put a larger manifest on the "
                "init node and name it in cni_manifest_path",
                "cni_manifest",
            )
        found["cni_manifest"] = text
    path = params.get("cni_manifest_path")
    if path not in (None, ""):
        if not isinstance(path, str) or len(path) > MAX_PATH or not _PATH.fullmatch(path):
            raise InputError(
                "must be an absolute path on the init node (letters, digits, ._+@=:/-)",
                "cni_manifest_path",
            )
        if ".." in path.split("/"):
            raise InputError("must not contain '..'", "cni_manifest_path")
        if "cni_manifest" in found:
            raise InputError("give the manifest's text or its path, not both", "cni_manifest_path")
        found["cni_manifest_path"] = path
    ignored = kubeadm_join.validate_ignored(params.get(kubeadm_join.IGNORE_PARAM))
    if ignored:
        found[kubeadm_join.IGNORE_PARAM] = ignored
    return found


def cni_phase(init_node: str, params: Mapping[str, Any]) -> Phase:
    text, path = params.get("cni_manifest"), params.get("cni_manifest_path")
    if text:
        data = text.encode()
        command = Command(
            kubeadm_join.PRELUDE + kubeadm_join.kubectl_line("apply", "-f", "-"),
            timeout=kubeadm_join.KUBECTL_TIMEOUT,
            stdin=data,
            stdin_label=f"the CNI manifest ({len(data)} bytes)",
        )
        return Phase(CNI_PHASE, (Step(CNI_STEP, init_node, (command,)),))
    if path:
        command = Command(
            kubeadm_join.PRELUDE + kubeadm_join.kubectl_line("apply", "-f", path),
            timeout=kubeadm_join.KUBECTL_TIMEOUT,
        )
        return Phase(CNI_PHASE, (Step(CNI_STEP, init_node, (command,)),))
    note = Outcome(
        "succeeded",
        "no CNI manifest chosen: nodes stay NotReady until one is applied "
        "(cni_manifest or cni_manifest_path)",
    )
    return Phase(CNI_PHASE, (Step(CNI_STEP, None, (), lambda context: note),))


def health_rbac_phase(init_node: str, manifest: bytes) -> Phase:
    """``kubectl apply -f -`` of the health identity's ClusterRole and ClusterRoleBinding on the
    init node; apply is idempotent, so a re-run changes nothing."""
    command = Command(
        kubeadm_join.PRELUDE + kubeadm_join.kubectl_line("apply", "-f", "-"),
        timeout=kubeadm_join.KUBECTL_TIMEOUT,
        stdin=manifest,
        stdin_label=f"the health role and its binding ({len(manifest)} bytes)",
    )
    return Phase(HEALTH_RBAC_PHASE, (Step(HEALTH_RBAC_STEP, init_node, (command,)),))


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: KubeadmInputs,
) -> Plan:
    """``nodes``: the cluster's control-plane nodes and workers, in name order."""
    params = validate_params(params)
    by_name = {node.name: node for node in nodes}
    init = by_name.get(inputs.init_node)
    if init is None or init.role != "control-plane":
        raise InputError("the cluster has no control-plane node to run kubeadm init", "nodes")
    kube_nodes = [n for n in nodes if n.role in ("control-plane", "worker")]
    fresh = [n for n in kube_nodes if n.name not in inputs.joined]
    joining = [n for n in fresh if n.name != init.name]
    phases: list[Phase] = list(
        kubeadm_join.preflight_phases(cluster, fresh, params.get(kubeadm_join.IGNORE_PARAM, []))
    )
    # Every node but the init node joins (or joined) with kubeadm join, which makes some files
    # itself: those are never written by the panel, not even on a re-run.
    joiners = [n.name for n in kube_nodes if n.name != init.name]
    pki = kubeadm_join.pki_phase(kube_nodes, inputs, joiners)
    if pki is not None:
        phases.append(pki)
    phases.append(
        Phase(INIT_PHASE, (kubeadm_join.init_step(init.name, inputs.init_config, inputs.ignored),))
    )
    if inputs.health_rbac:
        phases.append(health_rbac_phase(init.name, inputs.health_rbac))
    phases.append(
        Phase(
            UPLOAD_PHASE,
            (
                kubeadm_join.upload_certs_step(
                    init.name, inputs.init_config, inputs.certificate_key_id
                ),
            ),
        )
    )
    phases.append(
        Phase(
            TOKEN_PHASE,
            (kubeadm_join.token_step(init.name, inputs.token_id, inputs.token_config),),
        )
    )
    phases.extend(kubeadm_join.join_phases(joining, inputs))
    phases.append(cni_phase(init.name, params))
    labels = kubeadm_join.labels_phase(init.name, kube_nodes, inputs)
    if labels is not None:
        phases.append(labels)
    return Plan(KIND, tuple(phases))
