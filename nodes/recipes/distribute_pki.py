"""The ``distribute-pki`` job: each node's ``/etc/kubernetes`` bundle written onto it.

One phase ``distribute-pki`` with one step ``write /etc/kubernetes`` per node. The files are the
node's bundle exactly as the PKI builds it (passed in as plain data: relative path, content,
mode): keys and kubeconfigs 0600, certificates 0644, owned by root. Before anything is written,
every file the step would replace with other content is copied to
``/etc/kubernetes/backup/<UTC timestamp>/`` (the same relative path, a 0700 directory); a file
that already is the one in the bundle is neither backed up nor written, so a re-run changes
nothing.

Nothing goes to a node that does not need it: the bundle decides (workers get ``pki/ca.crt``
and ``kubelet.conf``, never a CA key), and this recipe refuses a plan that would put a CA or
service-account key on a worker or an etcd member. Keys are written as secret files: the plan
preview and the job log show their path, mode, size and sha256, never their content.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusterpanel.errors import InputError
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

KIND = "distribute-pki"
MUTATING = True
PHASE = "distribute-pki"
STEP = "write /etc/kubernetes"
ROOT = "/etc/kubernetes"
BACKUP_ROOT = f"{ROOT}/backup"
SAY = "clusterpanel:"

# The keys only control-plane nodes hold: whoever has them can sign any identity of the cluster.
CA_KEYS = frozenset({"pki/ca.key", "pki/front-proxy-ca.key", "pki/etcd/ca.key", "pki/sa.key"})
_RELATIVE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class BundleFile:
    """One file of a node's bundle, relative to ``/etc/kubernetes``."""

    content: bytes = field(repr=False)
    mode: int


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """distribute-pki takes no parameters."""
    for key in params:
        raise InputError(f"distribute-pki takes no parameters; unknown parameter {key!r}", key)
    return {}


def check_bundle(node: NodeTarget, files: Mapping[str, BundleFile]) -> None:
    """Refuse a bundle with a path outside ``/etc/kubernetes`` or a CA key for a non-control-plane
    node (a bug upstream must not copy CA keys onto workers)."""
    for path in files:
        if not _RELATIVE.fullmatch(path) or ".." in path.split("/") or path.startswith("backup/"):
            raise ValueError(f"the bundle of {node.name} holds a bad path {path!r}")
    if node.role != "control-plane":
        leaked = sorted(CA_KEYS & set(files))
        if leaked:
            raise ValueError(
                f"the bundle of the {node.role} {node.name} holds {', '.join(leaked)}: CA keys "
                "go to control-plane nodes only"
            )


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    inputs: Mapping[str, Mapping[str, BundleFile]] | None = None,
) -> Plan:
    """``inputs`` maps node names to their bundle files (relative path → ``BundleFile``)."""
    validate_params(params)
    steps = []
    for node in nodes:
        files = (inputs or {}).get(node.name)
        if not files:
            raise InputError(f"{node.name} has no bundle to distribute", "nodes")
        check_bundle(node, files)
        steps.append(node_step(node, files))
    return Plan(KIND, (Phase(PHASE, tuple(steps)),))


def node_step(node: NodeTarget, files: Mapping[str, BundleFile]) -> Step:
    writes = [
        FileWrite(
            f"{ROOT}/{path}",
            bundle_file.content,
            mode=bundle_file.mode,
            secret=_is_secret(path, bundle_file.mode),
            skip_if_identical=True,
        )
        for path, bundle_file in sorted(files.items())
    ]
    return Step(STEP, node.name, (backup_command(writes), *writes), _read)


def _is_secret(path: str, mode: int) -> bool:
    # Keys, and kubeconfigs that embed one, are the 0600 files.
    return path.endswith(".key") or mode & 0o077 == 0


def backup_command(writes: Sequence[FileWrite]) -> Command:
    """Copy every file that exists with other content than the bundle's to the dated backup."""
    q = shlex.quote
    calls = "\n".join(f"backup {q(w.path)} {w.sha256}" for w in writes)
    script = f"""set -e
umask 077
b={BACKUP_ROOT}/$(date -u +%Y%m%dT%H%M%SZ)
n=0
backup() {{
  [ -f "$1" ] || return 0
  [ "$(sha256sum < "$1" | cut -c1-64)" = "$2" ] && return 0
  rel=${{1#{ROOT}/}}
  mkdir -p "$b/$(dirname "$rel")"
  cp -p "$1" "$b/$rel"
  n=$((n + 1))
  echo "backed up $1"
}}
{calls}
if [ "$n" -gt 0 ]; then echo "{SAY} $n replaced files backed up to $b"
else echo "{SAY} no file to replace"; fi
"""
    return Command(script, timeout=60.0)


def _read(context: StepContext) -> Outcome:
    outcome = default_read(context)
    if outcome.status == "failed":
        return outcome
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines()
        if line.startswith(SAY)
    ]
    return Outcome("succeeded", "; ".join(said))
