"""Job kinds are registered by the apps; the runner knows none of them.

An app calls :func:`register` from its ``AppConfig.ready``. A kind validates its
parameters, previews its plan without connecting to any host, and runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from clusterpanel.errors import InputError

if TYPE_CHECKING:
    from clusterpanel.jobs.models import Job
    from clusterpanel.jobs.reporting import JobReporter
    from clusterpanel.security.audit import Actor

RunStatus = Literal["succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    explanation: str


class JobFailed(Exception):
    """A domain failure: the job ends ``failed`` with this sentence as its explanation."""


@dataclass(frozen=True)
class ParamField:
    """A parameter the launch page asks for. The page posts strings; a ``number`` field sent as
    a decimal is handed to ``validate_params`` as that int (anything else as sent, for it to
    refuse by name), so the API's parameters stay strictly typed. A ``multiline`` field (a
    manifest) is a text area, its line ends as the text has them (a browser posts CRLF). An
    ``optional`` field does not hold the preview back: the page opened for the kind shows the
    plan at once."""

    name: str
    label: str
    number: bool = False
    multiline: bool = False
    optional: bool = False


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    ``mutating`` kinds change machines: one at a time per cluster. ``preview`` and
    ``run`` get the Job row (unsaved for a preview: its cluster, ``params`` and the
    node ids in ``job.target_node_ids``).

    ``deadline`` is the job's overall limit in seconds (a number, or a function of the
    validated params); None means ``CLUSTERPANEL_JOB_DEADLINE``. It is capped at
    ``CLUSTERPANEL_JOB_DEADLINE_MAX`` and stored as ``job.deadline_seconds``; the reporter
    sets its ``cancel_event`` when it passes (``reporter.seconds_left()`` tells the rest).

    ``authorize`` is a kind's own rule on top of ``launch_jobs``: called with the actor and the
    unsaved, validated job before a plan, a launch or a retry; it raises ``PermissionDenied``
    (403) when this actor may not run this job on these nodes (a kind that copies CA keys onto
    control-plane nodes asks for an admin).

    ``param_fields`` are the parameters the launch page asks for (posted as ``param.<name>``).

    ``cluster_flavor`` is the flavor of cluster the kind is for (``kubeadm``, ``binary``); a
    launch, preview or retry on a cluster of another flavor is refused naming ``kind``. None:
    any cluster.
    """

    name: str
    label: str
    mutating: bool
    validate_params: Callable[[Mapping[str, Any]], dict[str, Any]]
    preview: Callable[[Job], dict[str, Any]]
    run: Callable[[Job, JobReporter], RunResult]
    deadline: int | Callable[[Mapping[str, Any]], int] | None = None
    authorize: Callable[[Actor, Job], None] | None = None
    param_fields: tuple[ParamField, ...] = ()
    cluster_flavor: str | None = None


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> None:
    _KINDS[kind.name] = kind


def get(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise InputError(f"unknown job kind {name!r}; known kinds: {known}", "kind") from None


def kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.name)
