"""The ``remove-node`` job: one node taken out of a running cluster (pure, no Django; the glue is
``nodes.lifecycle_jobs``).

A Kubernetes node (control-plane or worker), in phases that each wait for the one before:

1. ``drain``, on the kubectl node: ``kubectl cordon``, then ``kubectl drain <node>
   --ignore-daemonsets --delete-emptydir-data --grace-period=<s> --timeout=<s>s``. A failed drain
   uncordons the node and stops the job: the node is never reset or deleted after a failed drain,
   unless the operator asked for ``force`` — then the job goes on and says so in its explanation.
2. ``etcd member`` (a stacked control-plane node only): ``etcdctl member remove`` on a member
   that stays, with the panel's etcd client certificate, the member found by its name in
   ``etcdctl member list -w json`` — before the node's etcd is reset, so that etcd never counts a
   member that is gone.
3. ``reset``, on the node: ``kubeadm reset -f``.
4. ``delete``, on the kubectl node: ``kubectl delete node <node> --ignore-not-found``.
5. ``clean-up``, on the node: what ``kubeadm reset`` says it leaves (``/etc/cni/net.d``) and the
   kubelet's state (``/var/lib/kubelet``), emptied.

An external etcd node (not a Kubernetes node) gets ``etcd member`` (removed first) and then
``stop etcd``: the service disabled and stopped, its data moved aside.

The glue adds a last step that clears the node's ``joined_at`` (the inventory row stays).
kubectl runs with ``--kubeconfig /etc/kubernetes/admin.conf`` on the cluster's first
control-plane node, or on the first other joined control-plane node when that is the one removed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import external_etcd as etcd
from nodes.recipes.etcd_backup import PanelClient
from nodes.recipes.install import PRELUDE
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
    default_read,
)

KIND = "remove-node"
MUTATING = True

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBECTL = f"kubectl --kubeconfig {ADMIN_CONF}"
SAY = "clusterpanel:"
DRAIN_FAILED = "clusterpanel-drain-failed"
# What kubeadm reset leaves behind and tells the operator to remove, and the kubelet's state.
CLEANUP_DIRS = ("/etc/cni/net.d", "/var/lib/kubelet")
RESET_TIMEOUT = 600.0
MAX_DRAIN_TIMEOUT = 24 * 3600
_WORK_DIR = re.compile(r"^/[A-Za-z0-9/._-]+$")

DEFAULTS: dict[str, Any] = {"drain_timeout": 300, "grace_period": -1, "force": False}


@dataclass(frozen=True)
class Removal:
    """Who is removed and who stays, as the inventory says.

    ``control_planes``: the cluster's joined control-plane nodes (with ``node`` when it is one);
    ``etcd_members``: etcd's members (the joined control-plane nodes of a stacked cluster, the
    etcd nodes of an external one). ``kubectl_node``: where kubectl runs (None for an external
    etcd node, which is no Kubernetes node)."""

    node: NodeTarget
    kubectl_node: NodeTarget | None
    control_planes: tuple[NodeTarget, ...]
    etcd_members: tuple[NodeTarget, ...]


# Parameters


def _int(params: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = params.get(name, DEFAULTS[name])
    if value == "":  # an empty field of the launch page: the default
        value = DEFAULTS[name]
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        value = int(value)  # the page posts "-1" as text (only plain digits become numbers)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"must be a whole number from {low} to {high}", name)
    return value


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``drain_timeout`` (seconds, default 300), ``grace_period`` (seconds, default -1: each
    pod's own), ``force`` (default false: a failed drain stops the job)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        known = ", ".join(DEFAULTS)
        raise InputError(f"unknown parameter {unknown[0]!r}; remove-node takes {known}", unknown[0])
    force = params.get("force", False)
    if force in ("", "true", "false"):  # the launch page posts text
        force = force == "true"
    if not isinstance(force, bool):
        raise InputError("must be true or false", "force")
    return {
        "drain_timeout": _int(params, "drain_timeout", 1, MAX_DRAIN_TIMEOUT),
        "grace_period": _int(params, "grace_period", -1, MAX_DRAIN_TIMEOUT),
        "force": force,
    }


# Checks


def is_etcd_member(cluster: ClusterSpec, node: NodeTarget) -> bool:
    role = "etcd" if cluster.etcd_topology == "external" else "control-plane"
    return node.role == role


def quorum_kept(members: int) -> bool:
    """Whether removing one of ``members`` etcd members leaves a majority of them.

    The removal is a raft proposal that the *current* membership commits, with a quorum of
    ``members // 2 + 1``. When the members that stay are fewer than that, the removal needs the
    departing member's vote — and a node is most often removed because it is broken, so the
    proposal would never commit and etcd would be left without quorum. Hence: 3 → 2, 4 → 3 and
    5 → 4 are allowed; 2 → 1 and 1 → 0 are refused (add a member first, then remove this one)."""
    return members - 1 >= members // 2 + 1


def check(cluster: ClusterSpec, removal: Removal) -> None:
    """Refuses (InputError) a removal that would leave the cluster without a control plane or
    etcd without quorum; nothing has run then."""
    node = removal.node
    names = [n.name for n in removal.control_planes]
    if node.role == "control-plane" and names == [node.name]:
        raise InputError(
            f"{node.name} is the last control-plane node of cluster {cluster.name}: removing it "
            "would leave the cluster without an API server; join another control-plane node first",
            "nodes",
        )
    if node.role == "control-plane" and node.name not in names:
        raise InputError(f"{node.name} has not joined cluster {cluster.name}", "nodes")
    if is_etcd_member(cluster, node):
        count = len(removal.etcd_members)
        if not quorum_kept(count):
            raise InputError(
                f"removing {node.name} would leave etcd {count - 1} of its {count} members, not a "
                f"majority ({count // 2 + 1} needed to commit the removal): etcd would lose "
                "quorum; add a member first",
                "nodes",
            )
    if node.role != "etcd" and removal.kubectl_node is None:
        raise InputError(
            f"cluster {cluster.name} has no other joined control-plane node to run kubectl on",
            "nodes",
        )


# Steps


def _read(context: StepContext) -> Outcome:
    """Exit codes decide; the sentence is the script's ``clusterpanel:`` lines (or the last line
    of its stderr when it failed)."""
    outcome = default_read(context)
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines() + output.stderr.splitlines()
        if line.startswith(SAY)
    ]
    if outcome.status == "failed" and not said and context.outputs:
        tail = context.outputs[-1].stderr.strip().splitlines()
        said = tail[-1:]
    message = "; ".join(said) or outcome.message
    if outcome.status == "failed" and said:
        message = f"{outcome.message}: {message}"
    return Outcome(outcome.status, message)


def _command(script: str, timeout: float = 120.0) -> Command:
    return Command(PRELUDE + script.strip() + "\n", timeout=timeout)


def drain_line(node: str, params: Mapping[str, Any]) -> str:
    return (
        f"{KUBECTL} drain {shlex.quote(node)} --ignore-daemonsets --delete-emptydir-data "
        f"--grace-period={int(params['grace_period'])} --timeout={int(params['drain_timeout'])}s"
    )


def drain_step(node: NodeTarget, kubectl_node: NodeTarget, params: Mapping[str, Any]) -> Step:
    q = shlex.quote(node.name)
    if params["force"]:
        after = (
            f"echo '{DRAIN_FAILED}'\n"
            f"echo '{SAY} the drain of {node.name} failed; going on because force was asked'"
        )
    else:
        after = (
            f"{KUBECTL} uncordon {q}\n"
            f"echo '{SAY} the drain of {node.name} failed: {node.name} uncordoned, not removed' >&2"
            "\nexit 1"
        )
    script = (
        f"{KUBECTL} cordon {q} || exit 1\n"
        f"if {drain_line(node.name, params)}; then echo '{SAY} {node.name} drained'; exit 0; fi\n"
        f"{after}\n"
    )
    # The SSH command outlives kubectl's own --timeout (its pods' grace periods included).
    timeout = float(params["drain_timeout"]) + max(0, int(params["grace_period"])) + 120.0
    return Step(
        f"cordon and drain {node.name}",
        kubectl_node.name,
        (_command(script, timeout),),
        _read_drain,
    )


def _read_drain(context: StepContext) -> Outcome:
    outcome = _read(context)
    failed = any(DRAIN_FAILED in o.stdout for o in context.outputs)
    return Outcome(outcome.status, outcome.message, {"drain_failed": failed})


def member_remove_script(name: str, endpoints: Sequence[str], client: etcd.ClientCert) -> str:
    """Finds ``name``'s member ID in ``member list -w json`` (decimal there; ``member remove``
    takes it in hex) and removes it; a name no longer listed is already removed."""
    q = shlex.quote
    listing = etcd.etcdctl(endpoints, client, "member", "list", "-w", "json", timeout=10)
    remove = etcd.etcdctl(endpoints, client, "member", "remove", timeout=30)
    wanted = q(f'"name":"{name}"')
    return (
        "set -u\n"
        f'list=$({listing}) || {{ echo "{SAY} etcd answered no member list" >&2; exit 1; }}\n'
        # etcdctl prints one line of JSON: one member per line once split at each "{".
        f"id=$(printf '%s\\n' \"$list\" | tr '{{' '\\n' | grep -F {wanted} | "
        "sed -n 's/.*\"ID\":\\([0-9][0-9]*\\).*/\\1/p' | head -n 1)\n"
        f'if [ -z "$id" ]; then echo "{SAY} {name} is no etcd member (already removed)"; '
        "exit 0; fi\n"
        "hex=$(printf '%x' \"$id\")\n"
        f'{remove} "$hex" || exit 1\n'
        f'echo "{SAY} etcd member {name} ($hex) removed"\n'
    )


def member_step(
    node: NodeTarget, members: Sequence[NodeTarget], client: PanelClient, work_dir: str
) -> Step:
    if not _WORK_DIR.match(work_dir) or ".." in work_dir:
        raise ValueError(f"bad work directory {work_dir!r}")
    staying = [m for m in members if m.name != node.name]
    runner = staying[0]
    files = etcd.ClientCert(
        ca=f"{work_dir}/ca.crt", cert=f"{work_dir}/client.crt", key=f"{work_dir}/client.key"
    )
    q = shlex.quote
    endpoints = [etcd.client_url(m.address) for m in staying]
    script = f"trap 'rm -rf {q(work_dir)}' EXIT\n" + member_remove_script(
        node.name, endpoints, files
    )
    actions = (
        Command(f"rm -rf {q(work_dir)} && mkdir -m 0700 -p {q(work_dir)}", timeout=30),
        FileWrite(files.ca, client.ca_pem, mode=0o600),
        FileWrite(files.cert, client.cert_pem, mode=0o600),
        FileWrite(files.key, client.key_pem, mode=0o600, secret=True),
        _command(script, timeout=90.0),
    )
    return Step(f"remove etcd member {node.name}", runner.name, actions, _read)


def cleanup_script() -> str:
    # Emptied, not removed: either may be a mount point. -xdev: never into a leftover mount
    # (a pod volume kubeadm reset could not unmount).
    dirs = " ".join(CLEANUP_DIRS)
    return (
        f"for d in {dirs}; do\n"
        '  if [ -d "$d" ]; then find "$d" -xdev -mindepth 1 -delete || exit 1; '
        f'echo "{SAY} $d emptied"; else echo "{SAY} no $d"; fi\n'
        "done\n"
    )


def plan(
    cluster: ClusterSpec,
    removal: Removal,
    params: Mapping[str, Any],
    client: PanelClient | None,
    work_dir: str,
) -> Plan:
    """``client``: the panel's etcd client certificate (needed when the node is an etcd member)."""
    params = validate_params(params)
    check(cluster, removal)
    node = removal.node
    member = is_etcd_member(cluster, node)
    if member and client is None:
        raise InputError(f"cluster {cluster.name} has no etcd client certificate yet", "cluster")
    phases: list[Phase] = []
    kubectl_node = removal.kubectl_node
    if node.role != "etcd":
        assert kubectl_node is not None  # check() refused otherwise
        phases.append(Phase("drain", (drain_step(node, kubectl_node, params),)))
    if member:
        assert client is not None
        step = member_step(node, removal.etcd_members, client, work_dir)
        phases.append(Phase("etcd member", (step,)))
    if node.role == "etcd":
        stop = (
            "systemctl disable --now etcd\n"
            f"if [ -d {etcd.DATA_DIR}/member ]; then "
            f"mv {etcd.DATA_DIR}/member {etcd.DATA_DIR}/member.removed-$(date -u +%Y%m%dT%H%M%SZ)"
            f"; echo '{SAY} etcd stopped, its data moved aside'; "
            f"else echo '{SAY} etcd stopped'; fi"
        )
        phases.append(Phase("stop etcd", (Step("stop etcd", node.name, (_command(stop),), _read),)))
        return Plan(KIND, tuple(phases))
    assert kubectl_node is not None
    reset = _command(f"kubeadm reset -f && echo '{SAY} kubeadm reset done'", RESET_TIMEOUT)
    delete = _command(
        f"{KUBECTL} delete node {shlex.quote(node.name)} --ignore-not-found && "
        f"echo '{SAY} node {node.name} deleted'"
    )
    phases += [
        Phase("reset", (Step("kubeadm reset", node.name, (reset,), _read),)),
        Phase("delete", (Step(f"delete node {node.name}", kubectl_node.name, (delete,), _read),)),
        Phase(
            "clean-up",
            (Step("CNI and kubelet state", node.name, (_command(cleanup_script()),), _read),),
        ),
    ]
    return Plan(KIND, tuple(phases))
