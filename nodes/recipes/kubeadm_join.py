"""What the ``bootstrap`` and ``join`` jobs share: kubeadm's files, commands and checks.

Pure: the secrets (the rendered kubeadm configuration files that carry the bootstrap token and
the certificate key) come in as ``KubeadmInputs``; they reach a node only as 0600 files written
by the executor (``FileWrite(secret=True)``), never in a command line, so neither ``ps`` on the
node, the plan preview nor the job log shows them. kubeadm is asked not to print them either
(``--skip-token-print``, ``--skip-certificate-key-print``, the ``show-join-command`` phase
skipped).

Files and commands, as kubeadm documents them:

- ``/etc/kubernetes/kubeadm-init.yaml`` (init node): InitConfiguration + ClusterConfiguration,
  with the panel's token and certificate key; ``kubeadm init --config <file>
  --skip-token-print --skip-phases=show-join-command`` and ``kubeadm init phase upload-certs
  --upload-certs --skip-certificate-key-print --config <file>``. kubeadm finds the panel's
  certificates and kubeconfigs in /etc/kubernetes and uses them instead of making new ones.
- ``/etc/kubernetes/kubeadm-token.yaml`` (init node): an InitConfiguration holding only the
  panel's bootstrap token; ``kubeadm token create --config <file>`` (the token as an argument
  would show in ``ps``), run only when ``kube-system/bootstrap-token-<id>`` is not there yet.
- ``/etc/kubernetes/kubeadm-join.yaml`` (joining node): the JoinConfiguration (token,
  caCertHashes, for a control-plane node controlPlane.certificateKey); ``kubeadm join --config
  <file>``, the file removed afterwards.

Before a join, kubeadm's preflight refuses a node that already has ``/etc/kubernetes/kubelet.conf``
(and a worker that has ``/etc/kubernetes/pki/ca.crt``): the kubelet of a joining node gets its
credentials by TLS bootstrap. So the PKI written before the join leaves those files out
(``bundle_before_join``); the init node gets its whole bundle.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import distribute_pki, preflight
from nodes.recipes.distribute_pki import BundleFile
from nodes.recipes.plan import (
    Check,
    ClusterSpec,
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Step,
    StepContext,
    default_read,
)

ROOT = "/etc/kubernetes"
ADMIN_CONF = f"{ROOT}/admin.conf"
KUBELET_CONF = f"{ROOT}/kubelet.conf"
APISERVER_MANIFEST = f"{ROOT}/manifests/kube-apiserver.yaml"
INIT_CONFIG = f"{ROOT}/kubeadm-init.yaml"
TOKEN_CONFIG = f"{ROOT}/kubeadm-token.yaml"
JOIN_CONFIG = f"{ROOT}/kubeadm-join.yaml"
SAY = "clusterpanel:"

# Every command: the usual root PATH (where the tools live), no localised answers.
PRELUDE = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH LC_ALL=C\n"
)
# kubectl's own limit per request; each command's timeout is longer than what it may take.
KUBECTL = f"kubectl --kubeconfig {ADMIN_CONF} --request-timeout=60s"

# kubeadm's waits: image pulls in preflight (no limit of their own, bounded here), then the
# control-plane and kubelet health checks (4 min each in v1beta4) and the API calls after them.
INIT_TIMEOUT = 30 * 60.0
# Discovery (5 min), TLS bootstrap (5 min), and for a control plane the etcd join and the
# component health checks (4 min each).
JOIN_TIMEOUT = 25 * 60.0
KUBEADM_API_TIMEOUT = 5 * 60.0  # upload-certs, token create: a few API calls each
KUBECTL_TIMEOUT = 10 * 60.0  # many objects, each request at most 60 s

# Files kubeadm join's preflight wants absent, per role of the joining node.
JOIN_ABSENT = {
    "control-plane": frozenset({"kubelet.conf"}),
    "worker": frozenset({"kubelet.conf", "pki/ca.crt"}),
}

# The parameter and its rules are the standalone preflight job's (``all`` refused here).
IGNORE_PARAM = preflight.IGNORE_PARAM


@dataclass(frozen=True)
class KubeadmInputs:
    """What the panel holds for a bootstrap or a join; ``*_config`` are secret file contents.

    ``certificate_key_id`` and ``token_id`` name the steps that use them, so that a key or token
    renewed between a failed attempt and its retry makes those steps run again.
    """

    init_node: str
    joined: frozenset[str] = frozenset()
    bundles: Mapping[str, Mapping[str, BundleFile]] = field(default_factory=dict)
    init_config: bytes = field(default=b"", repr=False)
    certificate_key_id: str = ""
    token_id: str = ""
    token_config: bytes = field(default=b"", repr=False)
    join_configs: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    taints: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The RBAC of the panel's health identity (a ClusterRole and its binding, YAML), applied
    # after init; empty: not applied.
    health_rbac: bytes = b""
    # The preflight checks the job was told to ignore (the panel's names): kubeadm init and
    # join are told too, under kubeadm's names.
    ignored: Sequence[str] = ()


# --- parameters -----------------------------------------------------------------------------


def validate_ignored(value: Any) -> list[str]:
    """``ignore_preflight_errors`` for a job that changes machines: the preflight job's check
    names, each one named (as kubeadm's flag of that name, but never ``all``)."""
    return preflight.validate_ignored(value, allow_all=False)


# --- the preflight gate ---------------------------------------------------------------------

GATE_PHASE = "preflight"
GATE_STEP = "preflight gate"


def preflight_phases(
    cluster: ClusterSpec, nodes: Sequence[NodeTarget], ignored: Sequence[str]
) -> tuple[Phase, ...]:
    """The preflight job's probe of ``nodes``, then a gate that fails on any failed check not
    named in ``ignored`` (those are reported as ignored, like kubeadm's warnings)."""
    if not nodes:
        return ()
    # The probes show the ignored checks as the preflight job does: warnings, "(ignored)".
    params = {IGNORE_PARAM: list(ignored)} if ignored else {}
    probe = preflight.plan(cluster, nodes, params).phases[0]
    gate = Step(GATE_STEP, None, (), lambda context: read_gate(cluster, nodes, ignored, context))
    return (probe, Phase(GATE_PHASE, (gate,)))


def read_gate(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    ignored: Sequence[str],
    context: StepContext,
) -> Outcome:
    probes: dict[str, Outcome] = {}
    for (phase, step, node), outcome in context.earlier.items():
        if phase == preflight.PROBE_PHASE and step == preflight.PROBE_STEP and node is not None:
            probes[node] = outcome
    unanswered = [
        n.name for n in nodes if probes.get(n.name, Outcome("failed")).status != "succeeded"
    ]
    if unanswered:
        return Outcome("failed", f"preflight: no answer from {', '.join(unanswered)}")
    cross = list(preflight.ignoring(preflight.cross_node_checks(cluster, nodes, probes), ignored))
    every: list[Check] = [
        *preflight.ignoring((c for n in nodes for c in probes[n.name].checks), ignored),
        *cross,
    ]
    blocking = [c for c in every if c.status == "fail"]
    if blocking:
        shown = [
            c.message if c.node is None else f"{c.message} on {c.node} ({c.name})"
            for c in blocking[:6]
        ]
        if len(blocking) > 6:
            shown.append(f"{len(blocking) - 6} more")
        return Outcome(
            "failed",
            "preflight: " + "; ".join(shown) + f" (ignore a check by name with {IGNORE_PARAM})",
            checks=tuple(cross),
        )
    message = f"preflight passed on {len(nodes)} {'node' if len(nodes) == 1 else 'nodes'}"
    names = preflight.ignored_names(every)
    if names:
        message += f"; ignored as asked: {', '.join(names)}"
    return Outcome("succeeded", message, checks=tuple(cross))


# --- the PKI before kubeadm -----------------------------------------------------------------

PKI_PHASE = "pki"


def bundle_before_join(role: str, files: Mapping[str, BundleFile]) -> dict[str, BundleFile]:
    """The bundle without the files kubeadm join's preflight wants absent for ``role``."""
    absent = JOIN_ABSENT.get(role, frozenset())
    return {path: f for path, f in files.items() if path not in absent}


def pki_phase(
    nodes: Sequence[NodeTarget], inputs: KubeadmInputs, joining: Sequence[str]
) -> Phase | None:
    """The bundle written on every node (changed files only, backed up first); a joining node's
    without what kubeadm join makes itself. Nodes left with nothing to write get no step."""
    steps = []
    for node in nodes:
        files = inputs.bundles.get(node.name)
        if files is None:
            raise InputError(f"{node.name} has no certificates yet; issue them first", "nodes")
        distribute_pki.check_bundle(node, files)
        if node.name in joining:
            files = bundle_before_join(node.role, files)
        if files:
            steps.append(distribute_pki.node_step(node, files))
    return Phase(PKI_PHASE, tuple(steps)) if steps else None


# --- kubeadm on the init node ---------------------------------------------------------------


def _secret_file(path: str, content: bytes) -> FileWrite:
    return FileWrite(path, content, mode=0o600, secret=True, skip_if_identical=True)


def _reader(what: str) -> Callable[[StepContext], Outcome]:
    """Reads a step's answer: the panel's own lines on success; on failure ``what`` failed and
    the tool's last line of error output, so the job's explanation says which step and why."""

    def read(context: StepContext) -> Outcome:
        outcome = default_read(context)
        if outcome.status == "failed":
            last = [
                line.strip()
                for output in context.outputs
                for line in output.stderr.splitlines()
                if line.strip()
            ]
            why = f" ({last[-1][:300]})" if last else ""
            return Outcome("failed", f"{what} {outcome.message}{why}")
        said = [
            line.removeprefix(SAY).strip()
            for output in context.outputs
            for line in output.stdout.splitlines()
            if line.startswith(SAY)
        ]
        return Outcome("succeeded", "; ".join(said) or outcome.message)

    return read


def _ignore_flag(ignored: Sequence[str]) -> list[str]:
    """kubeadm's ``--ignore-preflight-errors`` for the panel's ignored checks (may be mixed with
    ``--config``); nothing when none of them has a kubeadm counterpart."""
    names = preflight.kubeadm_ignored(ignored)
    return [f"--ignore-preflight-errors={','.join(names)}"] if names else []


def init_step(node: str, config: bytes, ignored: Sequence[str] = ()) -> Step:
    """``kubeadm init`` unless it ran already: kubeadm's own marker is the API server's static
    pod manifest (its preflight refuses to run again where it exists)."""
    init = shlex.join(
        ["kubeadm", "init", "--config", INIT_CONFIG, "--skip-token-print",
         "--skip-phases=show-join-command", *_ignore_flag(ignored)]
    )  # fmt: skip
    script = f"""{PRELUDE}set -e
if [ -f {APISERVER_MANIFEST} ]; then
  if {KUBECTL} get --raw=/livez >/dev/null 2>&1; then
    echo "{SAY} kubeadm init ran here already and the API server answers: not run again"
    exit 0
  fi
  echo "{SAY} {APISERVER_MANIFEST} exists but the API server does not answer;" \
    "kubeadm init is not run over it" >&2
  exit 1
fi
{init}
echo "{SAY} kubeadm init done"
"""
    return Step(
        "kubeadm init",
        node,
        (_secret_file(INIT_CONFIG, config), Command(script, timeout=INIT_TIMEOUT + 60)),
        _reader("kubeadm init"),
    )


def upload_certs_step(node: str, config: bytes, key_id: str) -> Step:
    """The shared certificates into ``kube-system/kubeadm-certs``, encrypted with the panel's
    certificate key (in the file); named after the key so a renewed key uploads again."""
    line = shlex.join(
        ["kubeadm", "init", "phase", "upload-certs", "--upload-certs",
         "--skip-certificate-key-print", "--config", INIT_CONFIG]
    )  # fmt: skip
    return Step(
        f"upload-certs (certificate key {key_id})",
        node,
        (
            _secret_file(INIT_CONFIG, config),
            Command(PRELUDE + line, timeout=KUBEADM_API_TIMEOUT + 60),
        ),
        _reader("kubeadm init phase upload-certs"),
    )


def token_step(node: str, token_id: str, config: bytes) -> Step:
    """The panel's bootstrap token in the cluster, unless its Secret is there already (kubeadm
    token create refuses an existing id); named after the token."""
    if not re.fullmatch(r"[a-z0-9]{6}|new", token_id):  # "new": a preview, made by the run
        raise ValueError(f"bad token id {token_id!r}")
    secret = f"bootstrap-token-{token_id}"
    create = shlex.join(["kubeadm", "token", "create", "--config", TOKEN_CONFIG])
    script = f"""{PRELUDE}set -e
found=$({KUBECTL} -n kube-system get secret {secret} -o name --ignore-not-found)
if [ "$found" = "secret/{secret}" ]; then
  echo "{SAY} token {token_id} is in the cluster already"
else
  {create} >/dev/null
  echo "{SAY} token {token_id} created in the cluster"
fi
rm -f {TOKEN_CONFIG}
"""
    return Step(
        f"bootstrap token {token_id}",
        node,
        (_secret_file(TOKEN_CONFIG, config), Command(script, timeout=KUBEADM_API_TIMEOUT + 120)),
        _reader("kubeadm token create"),
    )


# --- joins ----------------------------------------------------------------------------------

JOIN_STEP = "kubeadm join"
JOIN_WORKERS_PHASE = "join workers"


def join_phase_name(node: str) -> str:
    return f"join {node}"


def join_step(node: str, config: bytes, ignored: Sequence[str] = ()) -> Step:
    """``kubeadm join --config``, unless the node joined already (its kubelet.conf exists:
    kubeadm's own preflight says the same); the file with the token goes afterwards."""
    join = shlex.join(["kubeadm", "join", "--config", JOIN_CONFIG, *_ignore_flag(ignored)])
    script = f"""{PRELUDE}
if [ -f {KUBELET_CONF} ]; then
  rm -f {JOIN_CONFIG}
  echo "{SAY} {KUBELET_CONF} exists: this node has joined already"
  exit 0
fi
rc=0
{join} || rc=$?
rm -f {JOIN_CONFIG}
[ "$rc" -eq 0 ] && echo "{SAY} joined"
exit "$rc"
"""
    return Step(
        JOIN_STEP,
        node,
        (_secret_file(JOIN_CONFIG, config), Command(script, timeout=JOIN_TIMEOUT + 60)),
        _reader("kubeadm join"),
    )


def join_phases(joining: Sequence[NodeTarget], inputs: KubeadmInputs) -> tuple[Phase, ...]:
    """Control-plane nodes one at a time (one phase each: etcd grows one member at a time),
    then the workers in one phase (in parallel, bounded by the executor)."""
    phases = []
    for node in joining:
        if node.role == "control-plane":
            phases.append(
                Phase(
                    join_phase_name(node.name),
                    (join_step(node.name, _join_config(inputs, node), inputs.ignored),),
                )
            )
    workers = tuple(
        join_step(node.name, _join_config(inputs, node), inputs.ignored)
        for node in joining
        if node.role == "worker"
    )
    if workers:
        phases.append(Phase(JOIN_WORKERS_PHASE, workers))
    return tuple(phases)


def _join_config(inputs: KubeadmInputs, node: NodeTarget) -> bytes:
    config = inputs.join_configs.get(node.name)
    if not config:
        raise InputError(f"no kubeadm join configuration for {node.name}", "nodes")
    return config


# --- labels and taints ----------------------------------------------------------------------

LABELS_PHASE = "labels and taints"
LABELS_STEP = "kubectl label and taint"


def labels_phase(
    init_node: str, nodes: Sequence[NodeTarget], inputs: KubeadmInputs
) -> Phase | None:
    """The inventory's labels and taints on the nodes (``--overwrite``: a re-run changes
    nothing). The kubelet may not set labels under kubernetes.io itself (NodeRestriction):
    the admin kubeconfig on the init node does."""
    lines = []
    for node in nodes:
        labels = inputs.labels.get(node.name) or {}
        if labels:
            pairs = [f"{key}={value}" for key, value in sorted(labels.items())]
            lines.append(
                f"{KUBECTL} label node {shlex.quote(node.name)} "
                f"{' '.join(shlex.quote(p) for p in pairs)} --overwrite"
            )
        taints = inputs.taints.get(node.name) or ()
        if taints:
            lines.append(
                f"{KUBECTL} taint node {shlex.quote(node.name)} "
                f"{' '.join(shlex.quote(t) for t in taints)} --overwrite"
            )
    if not lines:
        return None
    commands = tuple(Command(PRELUDE + line, timeout=KUBECTL_TIMEOUT) for line in lines)
    return Phase(LABELS_PHASE, (Step(LABELS_STEP, init_node, commands),))


def kubectl_line(*arguments: str) -> str:
    return f"{KUBECTL} {shlex.join(arguments)}"
