"""The renewal policy's service: edited by admins (page and API share ``update_policy``, so the
audit is the same), acted on by beat (``run_policies``).

One run, per enabled cluster, inside one transaction holding the policy's row lock (taken with
SKIP LOCKED: a second beat tick or a duplicated message running at the same moment passes the
cluster by): the outcome of the job the policy launched last is alerted once; then, when the
clock is inside the window, no job that changes machines is queued or running and a panel
leaf needs renewal, the kubeadm leaves are renewed in the panel and ``cert-rollout`` is launched
for the cluster's nodes. Renewed leaves are no longer due, so the next run (or the second of two
that queued behind the lock) finds nothing to do: one renewal and one rollout per due period. A
launch that is refused (the acting admin lost the role, the cluster has no nodes) rolls the
renewal back with it and is alerted, once per day and cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from clusterpanel.errors import Conflict, InputError
from clusterpanel.jobs.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Job, JobStatus
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.roles import require_permission
from nodes.alerts.services import notify
from nodes.models import Cluster
from nodes.recipes.cert_rollout import KIND as ROLLOUT_KIND
from nodes.renewal import policy
from nodes.renewal.models import RenewalPolicy

log = logging.getLogger(__name__)

EDITABLE = ("enabled", "days_before", "weekdays", "start_hour", "end_hour", "time_zone")


def policy_of(cluster: Cluster) -> RenewalPolicy:
    """The cluster's policy (unsaved, off, with the defaults when none was stored)."""
    found = RenewalPolicy.objects.filter(cluster=cluster).first()
    return found if found is not None else RenewalPolicy(cluster=cluster)


def clean(values: dict[str, Any], base: RenewalPolicy) -> dict[str, Any]:
    """The policy's fields checked, those not given taken from ``base``; ``InputError``
    naming the first field at fault."""
    values = {name: values.get(name, getattr(base, name)) for name in EDITABLE}
    out: dict[str, Any] = {}
    enabled = values["enabled"]
    if not isinstance(enabled, bool):
        raise InputError("must be true or false", "enabled")
    out["enabled"] = enabled
    days = values["days_before"]
    if isinstance(days, bool) or not isinstance(days, int):
        raise InputError("must be a whole number of days", "days_before")
    if not 1 <= days <= policy.MAX_DAYS_BEFORE:
        raise InputError(f"must be from 1 to {policy.MAX_DAYS_BEFORE} days", "days_before")
    out["days_before"] = days
    try:
        out["weekdays"] = policy.weekdays(values["weekdays"])
    except ValueError as error:
        raise InputError(str(error), "weekdays") from None
    for name in ("start_hour", "end_hour"):
        try:
            out[name] = policy.hour(values[name], name.replace("_", " "))
        except ValueError as error:
            raise InputError(str(error), name) from None
    zone = values["time_zone"]
    if not isinstance(zone, str) or len(zone) > 64:
        raise InputError("must be an IANA time zone name (at most 64 characters)", "time_zone")
    try:
        policy.zone(zone)
    except ValueError as error:
        raise InputError(str(error), "time_zone") from None
    out["time_zone"] = zone
    return out


@transaction.atomic
def update_policy(actor: Actor, cluster: Cluster, values: dict[str, Any]) -> RenewalPolicy:
    """Store the cluster's policy; the saving admin becomes the one beat acts for."""
    require_permission(
        actor.user,
        "manage_renewal_policy",
        "the renewal policy rolls out control-plane certificates: only admins may change it",
    )
    Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
    row = policy_of(cluster)
    checked = clean(values, row)
    for name, value in checked.items():
        setattr(row, name, value)
    row.acting_user = actor.user
    row.full_clean(exclude=["cluster", "last_job", "acting_user"])
    row.save()
    audit.record("renewal_policy.update", actor, obj=cluster, details=dict(checked))
    return row


def leaves(cluster: Cluster) -> list[policy.Leaf]:
    """The panel-issued leaves the policy renews: the active kubeadm files of the cluster."""
    from pki.models import Certificate

    return [
        policy.Leaf(f"{name} of {node}" if node else name, not_before, not_after)
        for name, node, not_before, not_after in Certificate.objects.tree()
        .filter(cluster=cluster)
        .values_list("name", "node_name", "not_before", "not_after")
    ]


@dataclass
class Outcome:
    cluster: str
    action: str  # "launched", "skipped" or "refused"
    detail: str = ""
    job: int | None = None


def _acting(row: RenewalPolicy) -> Actor:
    return Actor(user=row.acting_user, client_ip=None, via="schedule")


def alert_job_outcome(row: RenewalPolicy) -> bool:
    """Alert, once per job, how the rollout the policy launched ended; True when one went out."""
    job = row.last_job
    if job is None or job.status not in TERMINAL_STATUSES:
        return False
    ok = job.status == JobStatus.SUCCEEDED
    subject = (
        f"Scheduled certificate rollout (job #{job.pk}) succeeded"
        if ok
        else f"Scheduled certificate rollout (job #{job.pk}) {job.status}: {job.explanation}"[:255]
    )
    payload = {
        "kind": "certificate_renewal",
        "job": {"id": job.pk, "kind": job.kind, "status": job.status},
        "reason": row.last_reason,
        "explanation": job.explanation,
    }
    return bool(notify(row.cluster, f"renewal:job:{job.pk}", subject, payload))


def _refused(row: RenewalPolicy, now: datetime, why: str) -> Outcome:
    row.last_run_at = now
    row.last_error = why[:500]
    row.save(update_fields=["last_run_at", "last_error"])
    notify(
        row.cluster,
        f"renewal:refused:{row.cluster_id}:{now:%Y-%m-%d}",
        "Scheduled certificate renewal not started",
        {"kind": "certificate_renewal_refused", "reason": row.last_reason, "error": why},
    )
    log.warning("renewal policy of %s: %s", row.cluster.name, why)
    return Outcome(row.cluster.name, "refused", why)


def run_policy(cluster_id: int, now: datetime) -> Outcome | None:
    """One run of one cluster's policy (see the module's docstring); None when another run
    holds the policy or it is off."""
    from pki.services.certificates import renew

    with transaction.atomic():
        row = (
            RenewalPolicy.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("cluster", "last_job", "acting_user")
            .filter(cluster_id=cluster_id, enabled=True)
            .first()
        )
        if row is None:
            return None
        alert_job_outcome(row)
        name = row.cluster.name
        if not policy.inside(row.window(), now):
            return Outcome(name, "skipped", "outside the maintenance window")
        reason = policy.due(leaves(row.cluster), now, row.days_before)
        if reason is None:
            return Outcome(name, "skipped", "no certificate needs renewal")
        busy = Job.objects.filter(
            cluster_id=cluster_id, mutating=True, status__in=ACTIVE_STATUSES
        ).first()
        if busy is not None:
            return Outcome(name, "skipped", f"job #{busy.pk} ({busy.kind}) is {busy.status}")
        row.last_reason = reason[:300]
        actor = _acting(row)
        try:
            with transaction.atomic():  # the renewal stands only with its rollout launched
                renewed = renew(row.cluster, actor=actor)
                job = _launch(actor, row.cluster)
        except (InputError, Conflict, PermissionDenied) as error:
            return _refused(row, now, f"{type(error).__name__}: {error}")
        row.last_run_at = now
        row.last_job = job
        row.last_error = ""
        row.save(update_fields=["last_run_at", "last_job", "last_error", "last_reason"])
        audit.record(
            "renewal_policy.run",
            actor,
            obj=row.cluster,
            details={"reason": reason, "renewed": len(renewed), "job": job.pk},
        )
        return Outcome(name, "launched", reason, job.pk)


def _launch(actor: Actor, cluster: Cluster) -> Job:
    from clusterpanel.jobs import services as job_services

    if actor.user is None:
        raise PermissionDenied(
            "no admin has saved this policy since its acting account was removed"
        )
    return job_services.launch_job(actor, cluster, ROLLOUT_KIND)


def run_policies(now: datetime | None = None) -> list[Outcome]:
    """Beat's entry: every enabled policy, one at a time; what each did."""
    now = now or timezone.now()
    outcomes = []
    for cluster_id in (
        RenewalPolicy.objects.filter(enabled=True)
        .order_by("cluster_id")
        .values_list("cluster_id", flat=True)
    ):
        try:
            outcome = run_policy(cluster_id, now)
        except Exception:  # one cluster's failure must not keep the others from theirs
            log.exception("renewal policy of cluster %s failed", cluster_id)
            continue
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
