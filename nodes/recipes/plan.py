"""The plan of a job: phases of steps, each step a list of commands and file writes on one node.

A plan is plain data. The executor (``nodes.executor``) runs it over SSH; the plan
preview shows it without connecting anywhere. Every value that reaches a command
line was validated first and passed through ``shlex.quote`` by the recipe; secrets
never appear in a command line: they travel as ``stdin`` or as files with mode 0600.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MASK = "********"

StepStatus = Literal["succeeded", "failed"]
CheckStatus = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class ClusterSpec:
    """What a recipe may know about the cluster (no secrets)."""

    name: str
    kubernetes_version: str
    pod_subnet: str
    service_subnet: str
    container_runtime: str  # "containerd" | "cri-o"
    control_plane_endpoint: str = ""
    etcd_topology: str = "stacked"


@dataclass(frozen=True)
class NodeTarget:
    """One node as a recipe sees it (no credentials)."""

    name: str
    address: str
    role: str  # "control-plane" | "worker" | "etcd"


@dataclass(frozen=True)
class Command:
    """One shell line run on the node, as root (through sudo when the SSH user is not root).

    ``line`` is complete and already quoted. ``stdin`` carries secrets or data; the
    preview shows ``stdin_label`` instead of its content.
    """

    line: str
    timeout: float = 60.0
    stdin: bytes | None = field(default=None, repr=False)
    stdin_label: str = ""
    ok_exit_codes: tuple[int, ...] = (0,)

    def preview(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"command": self.line, "timeout": self.timeout}
        if self.stdin is not None:
            shown["stdin"] = self.stdin_label or f"{len(self.stdin)} bytes"
        return shown


@dataclass(frozen=True)
class FileWrite:
    """A file written atomically (temp file, then rename) with its mode and owner.

    ``skip_if_identical``: the executor first compares the file on the node (content, mode,
    owner) and writes nothing when it already is exactly this one, so that re-running a step
    changes nothing (not even the file's modification time).
    """

    path: str
    content: bytes = field(repr=False)
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False
    skip_if_identical: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def identical_check(self) -> str:
        """A shell line that exits 0 only when the node's file already is this one."""
        return identical_check(self.path, self.sha256, self.mode, self.owner, self.group)

    def preview(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": f"{self.mode:04o}",
            "owner": f"{self.owner}:{self.group}",
            "size": len(self.content),
            "sha256": hashlib.sha256(self.content).hexdigest(),
            "content": MASK if self.secret else None,
            "skip_if_identical": self.skip_if_identical,
        }


@dataclass(frozen=True)
class FileStream:
    """A file copied from the panel host to the node, streamed from ``source`` (an absolute path
    on the panel host) rather than held in memory: for release tarballs of hundreds of MiB.

    ``size`` and ``sha256`` are known in advance (the checksum the panel verified): the plan and
    its preview never read the file. The node checks what arrived against ``sha256`` before the
    file takes its place (a changed or truncated source never lands), and ``skip_if_identical``
    (on by default) sends nothing when the node already holds exactly this file — a retry after
    a network drop does not send a tarball again.
    """

    path: str
    source: str
    size: int
    sha256: str
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    skip_if_identical: bool = True

    def identical_check(self) -> str:
        """A shell line that exits 0 only when the node's file already is this one."""
        return identical_check(self.path, self.sha256, self.mode, self.owner, self.group)

    def preview(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "source": self.source,
            "mode": f"{self.mode:04o}",
            "owner": f"{self.owner}:{self.group}",
            "size": self.size,
            "sha256": self.sha256,
            "content": None,
            "skip_if_identical": self.skip_if_identical,
        }


def identical_check(path: str, sha256: str, mode: int, owner: str, group: str) -> str:
    """A shell line that exits 0 only when ``path`` on the node is a regular file with this
    content (by its sha256), mode and owner."""
    quoted = shlex.quote(path)
    expected = shlex.quote(f"{mode:o} {owner} {group}")
    return (
        f"[ -f {quoted} ] && [ ! -L {quoted} ] && "
        f'[ "$(sha256sum < {quoted} | cut -c1-64)" = {shlex.quote(sha256)} ] && '
        f"[ \"$(stat -c '%a %U %G' {quoted})\" = {expected} ]"
    )


Action = Command | FileWrite | FileStream


@dataclass(frozen=True)
class CommandOutput:
    """What one command answered; times are the worker's wall clock (epoch seconds)."""

    exit_code: int | None
    stdout: str
    stderr: str
    started_at: float
    finished_at: float
    timed_out: bool = False


@dataclass(frozen=True)
class Check:
    """One preflight-style finding: ``node`` is None for a cross-node check. ``ignored``: it
    failed, and the job was told to ignore it, so it is shown as a warning instead."""

    node: str | None
    name: str
    status: CheckStatus
    message: str
    ignored: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a step ended: a sentence for humans, data for later steps and the app."""

    status: StepStatus
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class StepContext:
    """What ``Step.read`` gets: this step's command outputs and earlier steps' outcomes.

    ``earlier`` is keyed by (phase name, step name, node name or None).
    """

    node: str | None
    outputs: tuple[CommandOutput, ...]
    earlier: Mapping[tuple[str, str, str | None], Outcome]


def default_read(context: StepContext) -> Outcome:
    """A step succeeds when every command exited with an accepted code."""
    for output in context.outputs:
        if output.timed_out:
            return Outcome("failed", "timed out")
        if output.exit_code != 0:
            return Outcome("failed", f"exited with code {output.exit_code}")
    return Outcome("succeeded")


@dataclass(frozen=True)
class Step:
    """One unit of work. ``node`` None means a step run on the worker, after the node steps
    of earlier phases (cross-node checks); it has no actions."""

    name: str
    node: str | None
    actions: tuple[Action, ...] = ()
    read: Callable[[StepContext], Outcome] = default_read


@dataclass(frozen=True)
class Phase:
    """Steps that may run in parallel (fanned out over nodes).

    A later phase runs only when every step of this one succeeded, unless
    ``continue_on_failure`` (a read-only gathering phase whose verdict comes later).
    """

    name: str
    steps: tuple[Step, ...]
    continue_on_failure: bool = False


@dataclass(frozen=True)
class Plan:
    kind: str
    phases: tuple[Phase, ...]

    def preview(self) -> dict[str, Any]:
        """The plan as JSON: phases, steps, and per node the command lines and files."""
        return {
            "kind": self.kind,
            "phases": [
                {
                    "name": phase.name,
                    "steps": [
                        {
                            "name": step.name,
                            "node": step.node,
                            "commands": [
                                a.preview() for a in step.actions if isinstance(a, Command)
                            ],
                            "files": [
                                a.preview()
                                for a in step.actions
                                if isinstance(a, FileWrite | FileStream)
                            ],
                        }
                        for step in phase.steps
                    ],
                }
                for phase in self.phases
            ],
        }
