"""Runs a recipe's plan over SSH: phases in order, steps of a phase fanned out over nodes.

No Django here: the job runner hands in a ``Reporter`` (it records steps and output
in the database) and the SSH targets; this module decides what runs when.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from nodes import ssh
from nodes.recipes.plan import Outcome, Plan

ExecutionStatus = Literal["succeeded", "failed", "cancelled"]
StepKey = tuple[str, str, "str | None"]


class StepHandle(Protocol):
    """One running step, as the reporter records it."""

    def output(self, stream: str, data: bytes) -> None:
        """Output as it arrives (``stream`` is "stdout", "stderr" or "panel")."""

    def finish(self, outcome: Outcome, exit_code: int | None) -> None:
        """The step ended; ``exit_code`` of its last command, None when none ran."""


class Reporter(Protocol):
    """What the executor tells the job (implemented by ``clusterpanel.jobs``)."""

    cancel_event: threading.Event

    def planned(self, plan: Plan) -> None:
        """Every step of the plan, before the first runs (pending rows, progress)."""

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        """The outcome of this step if it succeeded in the attempt this one retries."""

    def start_step(self, phase: str, step: str, node: str | None) -> StepHandle:
        """The step starts now."""

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        """The step will not run (cancelled, or an earlier phase failed)."""


@dataclass(frozen=True)
class Execution:
    """How a plan ended, with one sentence for the operator."""

    status: ExecutionStatus
    explanation: str
    outcomes: Mapping[tuple[str, str, str | None], Outcome]


Connect = Callable[[ssh.Target], ssh.Session]


def execute(
    plan: Plan,
    targets: Mapping[str, ssh.Target],
    reporter: Reporter,
    *,
    max_parallel: int = 20,
    deadline: float | None = None,
    connect: Connect = ssh.Session.open,
) -> Execution:
    """Run ``plan``; ``targets`` maps node names to where and how to reach them."""
    raise NotImplementedError
