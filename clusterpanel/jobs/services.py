"""Launching, previewing, cancelling and retrying jobs: one function each, for pages and API.

Each owns its transaction and its audit event. A launch writes the Job row (with the plan the
operator saw) and sends the task message only once the row is committed, so a worker never
looks for a job that is not there yet, and a rolled-back launch sends nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction

from clusterpanel.errors import COLLISION, Conflict, InputError
from clusterpanel.jobs import registry
from clusterpanel.jobs.models import ACTIVE_STATUSES, RETRYABLE_STATUSES, Job
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission

MAX_NODES = 1000


def _cluster_model() -> Any:
    return apps.get_model("nodes", "Cluster")


def _node_model() -> Any:
    return apps.get_model("nodes", "Node")


def _resolve_cluster(cluster: Any, lock: bool = False) -> Any:
    pk = getattr(cluster, "pk", cluster)
    if isinstance(pk, bool) or not isinstance(pk, int):
        raise InputError("must be a cluster id (a whole number)", "cluster")
    queryset = _cluster_model().objects.filter(pk=pk)
    if lock:
        # The row lock a cluster's deletion also takes: a launch and a deletion take turns.
        queryset = queryset.select_for_update()
    found = queryset.first()
    if found is None:
        raise InputError(f"there is no cluster {pk}", "cluster")
    return found


def _resolve_nodes(cluster: Any, node_ids: Any) -> list[Any]:
    nodes = list(_node_model().objects.filter(cluster_id=cluster.pk).order_by("name"))
    if node_ids is None:
        return nodes
    if not isinstance(node_ids, list | tuple) or any(
        isinstance(i, bool) or not isinstance(i, int) for i in node_ids
    ):
        raise InputError("must be a list of node ids (whole numbers)", "nodes")
    if len(node_ids) > MAX_NODES:
        raise InputError(f"at most {MAX_NODES} nodes", "nodes")
    by_id = {node.pk: node for node in nodes}
    strangers = sorted({i for i in node_ids if i not in by_id})
    if strangers:
        listed = ", ".join(str(i) for i in strangers)
        raise InputError(f"not a node of cluster {cluster.name}: {listed}", "nodes")
    if not node_ids:
        raise InputError("choose at least one node, or leave nodes out for all of them", "nodes")
    wanted = set(node_ids)
    return [node for node in nodes if node.pk in wanted]


def _deadline(kind: registry.JobKind, params: Mapping[str, Any]) -> int:
    asked = kind.deadline(params) if callable(kind.deadline) else kind.deadline
    seconds = int(asked) if asked else int(settings.CLUSTERPANEL_JOB_DEADLINE)
    return max(1, min(seconds, int(settings.CLUSTERPANEL_JOB_DEADLINE_MAX)))


def _check_flavor(kind: registry.JobKind, cluster: Any) -> None:
    flavor = getattr(cluster, "flavor", "") or ""
    if kind.cluster_flavor is None or flavor == kind.cluster_flavor:
        return
    raise InputError(
        f"{kind.name} is a job of {kind.cluster_flavor} clusters; cluster {cluster.name} is a "
        f"{flavor} cluster",
        "kind",
    )


def _prepare(
    actor: Actor, cluster: Any, kind_name: Any, node_ids: Any, params: Any, *, lock: bool = False
) -> tuple[registry.JobKind, Job, list[Any]]:
    """The unsaved job a launch would write, validated: kind, cluster, nodes, params."""
    if not isinstance(kind_name, str):
        raise InputError("must be the name of a job kind", "kind")
    kind = registry.get(kind_name)
    cluster = _resolve_cluster(cluster, lock=lock)
    _check_flavor(kind, cluster)
    nodes = _resolve_nodes(cluster, node_ids)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InputError("must be an object", "params")
    validated = kind.validate_params(params)
    job = Job(
        kind=kind.name,
        cluster=cluster,
        cluster_name=cluster.name,
        params=validated,
        mutating=kind.mutating,
        deadline_seconds=_deadline(kind, validated),
    )
    job.target_node_ids = [node.pk for node in nodes]
    if kind.authorize is not None:
        kind.authorize(actor, job)
    return kind, job, nodes


def _preview(kind: registry.JobKind, job: Job, nodes: list[Any]) -> dict[str, Any]:
    return {
        "kind": kind.name,
        "label": kind.label,
        "mutating": kind.mutating,
        "cluster": job.cluster_id,
        "nodes": [{"id": node.pk, "name": node.name} for node in nodes],
        "params": job.params,
        "deadline_seconds": job.deadline_seconds,
        "plan": kind.preview(job),
    }


def plan_job(
    actor: Actor, cluster: Any, kind: Any, node_ids: Any = None, params: Any = None
) -> dict[str, Any]:
    """What launching would run, without writing anything or connecting to any host."""
    require_permission(actor.user, "launch_jobs", "Only operators and admins may launch jobs.")
    job_kind, job, nodes = _prepare(actor, cluster, kind, node_ids, params)
    preview = _preview(job_kind, job, nodes)
    busy = _active_mutating(job.cluster_id) if job_kind.mutating else None
    preview["blocked_by"] = busy.pk if busy is not None else None
    return preview


def _active_mutating(cluster_id: int | None) -> Job | None:
    if cluster_id is None:
        return None
    return (
        Job.objects.filter(cluster_id=cluster_id, mutating=True, status__in=ACTIVE_STATUSES)
        .order_by("pk")
        .first()
    )


def _busy(cluster: Any) -> Conflict:
    other = _active_mutating(cluster.pk)
    if other is None:
        return Conflict(
            f"Another job that changes machines was just launched on cluster {cluster.name}; "
            "try again."
        )
    return Conflict(
        f"Job #{other.pk} ({other.kind}) is {other.status} on cluster {cluster.name}; one job "
        "that changes machines runs at a time per cluster. Wait for it to end or cancel it."
    )


def _launch(
    actor: Actor,
    cluster: Any,
    kind: Any,
    node_ids: Any,
    params: Any,
    retry_of: Job | None,
    request_key: str = "",
) -> Job:
    from clusterpanel.jobs.tasks import dispatch

    job_kind, job, nodes = _prepare(actor, cluster, kind, node_ids, params, lock=True)
    job.request_key = request_key
    job.plan = _preview(job_kind, job, nodes)["plan"]
    job.launched_by = actor.user
    job.launched_by_name = actor.username
    job.via = actor.via
    job.client_ip = actor.client_ip
    job.task_id = str(uuid.uuid4())
    if retry_of is not None:
        job.retry_of = retry_of
        job.attempt = retry_of.attempt + 1
    try:
        with transaction.atomic():  # a savepoint: PostgreSQL's transaction survives the refusal
            job.save()
    except IntegrityError:
        if request_key and _launched_with(actor, request_key) is not None:
            raise _SameRequest from None  # the same launch, sent twice at once
        raise _busy(job.cluster) from None
    job.nodes.set([node.pk for node in nodes])
    job.target_node_ids = [node.pk for node in nodes]
    details: dict[str, Any] = {
        "job": job.pk,
        "kind": job.kind,
        "nodes": job.target_node_ids,
        "attempt": job.attempt,
    }
    if retry_of is not None:
        details["retry_of"] = retry_of.pk
    audit.record("job.retry" if retry_of else "job.launch", actor, obj=job, details=details)
    transaction.on_commit(lambda: dispatch(job))
    return job


@transaction.atomic
def launch_job(
    actor: Actor, cluster: Any, kind: Any, node_ids: Any = None, params: Any = None
) -> Job:
    """Write a queued job and, on commit, send its task. ``Conflict`` (409) while another job
    that changes machines is active on the cluster."""
    require_permission(actor.user, "launch_jobs", "Only operators and admins may launch jobs.")
    return _launch(actor, cluster, kind, node_ids, params, retry_of=None)


REQUEST_KEY_FIELD = "request_key"
_REQUEST_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class _SameRequest(Exception):
    """The key's job was written by a request that ran at the same time."""


def _launched_with(actor: Actor, request_key: str) -> Job | None:
    if actor.user is None:
        return None
    return Job.objects.filter(launched_by=actor.user, request_key=request_key).first()


def launch_job_once(
    actor: Actor,
    cluster: Any,
    kind: Any,
    node_ids: Any = None,
    params: Any = None,
    *,
    request_key: str,
    key_field: str = REQUEST_KEY_FIELD,
) -> tuple[Job, bool]:
    """``launch_job`` that a double click or a client's retry cannot run twice: the job and
    True when launched now; the job launched earlier with this ``request_key`` by the same
    user and False when the request is sent again. The same key for another launch (another
    kind, cluster, nodes or params) is a ``Conflict``; an empty key launches every time.
    ``key_field`` names the key in a refusal (the API's header)."""
    require_permission(actor.user, "launch_jobs", "Only operators and admins may launch jobs.")
    if request_key and not _REQUEST_KEY.fullmatch(request_key):
        raise InputError("must be 1 to 64 letters, digits or ._:- (a UUID serves)", key_field)
    for _ in range(2):
        earlier = _launched_with(actor, request_key) if request_key else None
        if earlier is not None:
            _check_same_launch(actor, earlier, cluster, kind, node_ids, params)
            return earlier, False
        try:
            with transaction.atomic():
                job = _launch(actor, cluster, kind, node_ids, params, None, request_key)
        except _SameRequest:
            continue  # read the other request's job above
        return job, True
    raise Conflict(COLLISION)


def _check_same_launch(
    actor: Actor, earlier: Job, cluster: Any, kind: Any, node_ids: Any, params: Any
) -> None:
    _, job, _ = _prepare(actor, cluster, kind, node_ids, params)
    same = (job.kind, job.cluster_id, sorted(job.target_node_ids), job.params) == (
        earlier.kind,
        earlier.cluster_id,
        sorted(earlier.target_node_ids),
        earlier.params,
    )
    if not same:
        raise Conflict(
            f"This request key was used for {earlier} with another kind, cluster, nodes or "
            "parameters; send a new key for a new launch."
        )


@transaction.atomic
def launch_scheduled_job(cluster: Any, kind: Any, node_ids: Any = None, params: Any = None) -> Job:
    """``launch_job`` for the panel's own periodic tasks: no user, so no role to check; the job
    and its audit event say ``via=schedule``. Same refusals (``InputError``, ``Conflict``)."""
    return _launch(Actor.for_schedule(), cluster, kind, node_ids, params, retry_of=None)


@transaction.atomic
def cancel_job(actor: Actor, job: Job) -> Job:
    """A queued job ends cancelled at once; a running one is asked to stop (the worker ends
    it at its next heartbeat). ``Conflict`` when the job has already ended."""
    require_permission(actor.user, "launch_jobs", "Only operators and admins may cancel jobs.")
    was = job.status
    outcome = job.cancel(actor.username)
    if not outcome:
        job.refresh_from_db()
        raise Conflict(f"{job} has already ended ({job.status}); there is nothing to cancel.")
    audit.record(
        "job.cancel",
        actor,
        obj=job,
        cluster=job.cluster,
        details={"job": job.pk, "kind": job.kind, "was": was, "outcome": outcome},
    )
    job.refresh_from_db()
    return job


@transaction.atomic
def retry_job(actor: Actor, job: Job) -> Job:
    """A new attempt of a failed, errored or cancelled job: same kind, cluster, nodes and
    params; steps that succeeded in earlier attempts are not run again. A job is retried once:
    a second retry (a double click, a client sending its request again) is a ``Conflict``
    naming the attempt that exists, which is the one to retry next."""
    require_permission(actor.user, "launch_jobs", "Only operators and admins may retry jobs.")
    # The row lock makes two retries at once queue here, so the second sees the first's job.
    job = Job.objects.select_for_update().get(pk=job.pk)
    later = job.retries.order_by("pk").first()
    if later is not None:
        raise Conflict(f"{job} was already retried by {later}; retry that one if it fails too.")
    if job.status not in RETRYABLE_STATUSES:
        allowed = ", ".join(str(s) for s in RETRYABLE_STATUSES)
        raise Conflict(f"{job} is {job.status}; only jobs that are {allowed} can be retried.")
    if job.cluster_id is None:
        raise Conflict(f"The cluster of {job} was deleted; it cannot be retried.")
    node_ids = job.target_node_ids or None
    return _launch(actor, job.cluster_id, job.kind, node_ids, job.params, retry_of=job)
