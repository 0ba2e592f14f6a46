"""A health round of one cluster: every check of every node at once, each with its own timeout,
then the results stored as current status, history samples and transitions.

The checks run in a thread pool and touch no database: everything they need (addresses, CA and
client certificates, decrypted SSH targets) is read before, and their results are written after,
in one transaction with one query per table, however many nodes the cluster has.

The apiserver is probed as the panel's own least-privileged user ``clusterpanel:health``
(``pki.domain.health_identity``): a client certificate from the cluster CA that the bootstrap
job binds to a role reading the health endpoints only, issued on the first round that needs it
and kept current by ``pki.services.certificates.health_identity``. No certificate of kubeadm's
tree is as narrow (``apiserver-kubelet-client`` is a cluster admin).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import ssh
from nodes.health import node_checks, probes
from nodes.health.probes import ProbeResult
from nodes.metrics import HealthRow
from nodes.models import Cluster, ComponentHealth, HealthEvent, HealthSample, Node
from nodes.targets import target_for

log = logging.getLogger(__name__)

APISERVER_PORT = 6443
ETCD_CLIENT_PORT = 2379
SSH = "ssh"
APISERVER_LIVEZ = "kube-apiserver livez"
APISERVER_READYZ = "kube-apiserver readyz"
ETCD = "etcd"
ETCD_ALARMS = "etcd alarms"
ETCD_MEMBERS = "etcd members"

# One result: component, node id (None: the cluster as a whole), target, result.
Row = tuple[str, int | None, str, ProbeResult]
Check = Callable[[], list[Row]]


def check_timeout() -> float:
    return float(getattr(settings, "CLUSTERPANEL_HEALTH_CHECK_TIMEOUT", 5))


def _where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _endpoint(cluster: Cluster) -> tuple[str, int] | None:
    value = cluster.control_plane_endpoint.strip()
    if not value:
        return None
    host, _, port = (
        value.rpartition(":") if value.count(":") == 1 or "]" in value else (value, "", "")
    )
    host = host.strip("[]") or value
    return host, int(port) if port.isdigit() else APISERVER_PORT


@dataclasses.dataclass(frozen=True)
class RoundPKI:
    """What a round's probes present and trust, read before any check runs."""

    ca: bytes | None  # the cluster CA
    etcd_ca: bytes | None
    etcd_client: probes.ClientIdentity | None  # etcd/healthcheck-client
    apiserver_client: probes.ClientIdentity | None  # the panel's clusterpanel:health


def _identity(row: Any) -> probes.ClientIdentity | None:
    if row is None:
        return None
    return probes.ClientIdentity(row.certificate_pem.encode(), row.private_key_pem.encode())


def _pki(cluster: Cluster) -> RoundPKI:
    """The cluster CA, the etcd CA and the client identities, when issued (the health identity
    is issued here when it is missing or due)."""
    from pki.services.certificates import active_cas, active_tree, health_identity

    cas = active_cas(cluster)
    ca = cas.get("ca")
    etcd_ca = cas.get("etcd/ca")
    return RoundPKI(
        ca=ca.certificate_pem.encode() if ca else None,
        etcd_ca=etcd_ca.certificate_pem.encode() if etcd_ca else None,
        etcd_client=_identity(active_tree(cluster).get(("etcd/healthcheck-client", None))),
        apiserver_client=_identity(health_identity(cluster)) if ca else None,
    )


def _unknown(component: str, node_id: int | None, target: str, why: str) -> Check:
    return lambda: [(component, node_id, target, ProbeResult(probes.UNKNOWN, 0.0, why))]


def _apiserver_checks(
    node_id: int | None,
    address: str,
    port: int,
    ca: bytes | None,
    client: probes.ClientIdentity | None,
    timeout: float,
) -> list[Check]:
    target = f"https://{_where(address, port)}"
    out: list[Check] = []
    for component, endpoint in ((APISERVER_LIVEZ, "livez"), (APISERVER_READYZ, "readyz")):
        if ca is None:
            out.append(_unknown(component, node_id, target, "the cluster CA is not issued yet"))
            continue

        def check(component: str = component, endpoint: str = endpoint) -> list[Row]:
            result = probes.apiserver(
                address, port, endpoint, ca_pem=ca, client=client, timeout=timeout
            )
            return [(component, node_id, target, result)]

        out.append(check)
    return out


def _etcd_cluster_check(
    members: list[Node], ca: bytes, client: probes.ClientIdentity, timeout: float
) -> Check:
    """Alarms and the member list, asked of the first members in turn until one answers."""

    def check() -> list[Row]:
        rows: list[Row] = []
        for probe, component in ((probes.etcd_alarms, ETCD_ALARMS), (probes.etcd_members, None)):
            result = ProbeResult(probes.UNKNOWN, 0.0, "no etcd member answered")
            first: ProbeResult | None = None  # when none answers, the first one's reason
            for node in members[:3]:
                if component is None:
                    result = probes.etcd_members(
                        str(node.address),
                        ETCD_CLIENT_PORT,
                        ca_pem=ca,
                        client=client,
                        timeout=timeout,
                        expected=len(members),
                    )
                else:
                    result = probe(
                        str(node.address),
                        ETCD_CLIENT_PORT,
                        ca_pem=ca,
                        client=client,
                        timeout=timeout,
                    )
                if result.status != probes.UNKNOWN:
                    break
                first = first or result
            else:
                result = first or result
            rows.append((component or ETCD_MEMBERS, None, "etcd cluster", result))
        return rows

    return check


def _node_check(node: Node, target: ssh.Target, runtime: str, timeout: float) -> Check:
    """SSH reachability (pinned host key) and the node-side checks, from one command."""
    checks = node_checks.checks_for(node.role, runtime)
    where = _where(target.address, target.port)

    def check() -> list[Row]:
        started = time.monotonic()
        rows: list[Row] = []
        try:
            with ssh.Session.open(target) as session:
                connected = (time.monotonic() - started) * 1000
                rows.append(
                    (SSH, node.pk, where, ProbeResult(probes.HEALTHY, connected, "reachable"))
                )
                if not checks:
                    return rows
                result = session.run(
                    node_checks.script(checks, timeout), timeout=timeout * (len(checks) + 1)
                )
        except ssh.HostKeyMismatch as exc:
            why = f"host key changed: pinned {exc.pinned}, presented {exc.presented}"
            return [(SSH, node.pk, where, ProbeResult(probes.UNHEALTHY, 0.0, why))]
        except ssh.HostKeyUnknown:
            why = "host key not approved yet"
            return [(SSH, node.pk, where, ProbeResult(probes.UNKNOWN, 0.0, why))]
        except (ssh.SSHError, OSError) as exc:
            ms = (time.monotonic() - started) * 1000
            return [(SSH, node.pk, where, ProbeResult(probes.UNHEALTHY, ms, str(exc)))]
        parsed = node_checks.parse(result.stdout.decode("utf-8", "replace"), checks)
        for c in checks:
            rows.append((c.component, node.pk, c.target, parsed[c.component]))
        return rows

    return check


def plan_round(cluster: Cluster, nodes: list[Node], timeout: float) -> list[Check]:
    """Every check of one round of ``cluster``."""
    pki = _pki(cluster)
    ca, etcd_ca, etcd_client, client = pki.ca, pki.etcd_ca, pki.etcd_client, pki.apiserver_client
    checks: list[Check] = []
    control_planes = [n for n in nodes if n.role == "control-plane"]
    for node in control_planes:
        address = str(node.address)
        checks += _apiserver_checks(node.pk, address, APISERVER_PORT, ca, client, timeout)
    endpoint = _endpoint(cluster)
    if endpoint is not None:
        checks += _apiserver_checks(None, endpoint[0], endpoint[1], ca, client, timeout)
    etcd_role = "etcd" if cluster.etcd_topology == "external" else "control-plane"
    members = [n for n in nodes if n.role == etcd_role]
    for node in members:
        address = str(node.address)
        target = f"https://{_where(address, ETCD_CLIENT_PORT)}"
        if etcd_ca is None or etcd_client is None:
            checks.append(
                _unknown(ETCD, node.pk, target, "the etcd certificates are not issued yet")
            )
            continue

        def etcd_check(
            address: str = address, node_id: int = node.pk, target: str = target
        ) -> list[Row]:
            assert etcd_ca is not None and etcd_client is not None
            result = probes.etcd_health(
                address, ETCD_CLIENT_PORT, ca_pem=etcd_ca, client=etcd_client, timeout=timeout
            )
            return [(ETCD, node_id, target, result)]

        checks.append(etcd_check)
    if members and etcd_ca is not None and etcd_client is not None:
        checks.append(_etcd_cluster_check(members, etcd_ca, etcd_client, timeout))
    for node in nodes:
        health_timeouts = ssh.Timeouts(timeout, timeout, timeout, max(timeout, 5.0))
        # Health never pins a key: an unapproved key is reported, not trusted.
        ssh_target = dataclasses.replace(
            target_for(node), trust_on_first_use=False, timeouts=health_timeouts
        )
        checks.append(_node_check(node, ssh_target, cluster.container_runtime, timeout))
    return checks


def _run(check: Check) -> list[Row]:
    try:
        return check()
    except Exception:  # a bug in one check must not lose the others' results
        log.exception("a health check failed")
        return []


def run_round(cluster: Cluster, *, now: datetime | None = None) -> list[Row]:
    """Run every check of ``cluster`` and store the results; the rows, for the caller."""
    timeout = check_timeout()
    nodes = list(Node.objects.filter(cluster=cluster).select_related("cluster").order_by("name"))
    checks = plan_round(cluster, nodes, timeout)
    workers = max(1, min(len(checks), int(getattr(settings, "CLUSTERPANEL_HEALTH_WORKERS", 16))))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health") as pool:
        rows = [row for rows in pool.map(_run, checks) for row in rows]
    record(cluster, rows, now or timezone.now())
    return rows


# The history keeps one sample per check and bucket (``HealthSample``). A divisor of an hour:
# counted from the epoch, the buckets start on each quarter hour (UTC), as the Health tab groups.
SAMPLE_BUCKET = timedelta(minutes=15)


def bucket_start(at: datetime, bucket: timedelta = SAMPLE_BUCKET) -> datetime:
    seconds = bucket.total_seconds()
    return datetime.fromtimestamp(at.timestamp() // seconds * seconds, UTC)


def _merged_samples(
    cluster: Cluster, samples: list[HealthSample], now: datetime
) -> tuple[list[HealthSample], list[HealthSample]]:
    """(new, updated): each result merged into its check's sample of the current bucket, when
    an earlier round of the bucket wrote one (the highest latency, the last status and time,
    one more round counted), else a new sample. The rows of the bucket are the cluster's
    samples since the bucket's start: a sample's time is its last round's."""
    since = bucket_start(now)
    in_bucket = HealthSample.objects.filter(
        cluster=cluster, checked_at__gte=since, checked_at__lt=since + SAMPLE_BUCKET
    )
    earlier = {(s.component, s.node_id, s.target): s for s in in_bucket}
    new, updated = [], []
    for sample in samples:
        kept = earlier.get((sample.component, sample.node_id, sample.target))
        if kept is None or kept.checked_at > sample.checked_at:
            new.append(sample)
            continue
        kept.latency_ms = max(kept.latency_ms, sample.latency_ms)
        kept.status, kept.checked_at = sample.status, sample.checked_at
        kept.samples += 1
        updated.append(kept)
    return new, updated


def record(cluster: Cluster, rows: list[Row], now: datetime) -> None:
    """Store ``rows`` as current status (one row per check), history samples and transitions."""
    with transaction.atomic():
        # One round of a cluster records at a time (a "Check now" may overlap a scheduled
        # round): the merge below reads the bucket's samples, then writes them.
        locked = Cluster.objects.select_for_update().filter(pk=cluster.pk)
        if locked.values_list("pk", flat=True).first() is None:
            return  # deleted while its checks ran: nothing left to record against
        current = {
            (h.component, h.node_id, h.target): h
            for h in ComponentHealth.objects.filter(cluster=cluster)
        }
        created, updated, samples, events = [], [], [], []
        seen = set()
        for component, node_id, target, result in rows:
            key = (component, node_id, target[:300])
            seen.add(key)
            message = result.message.replace("\x00", "")[:1000]
            event = functools.partial(
                HealthEvent,
                cluster=cluster,
                node_id=node_id,
                component=component,
                target=key[2],
                to_status=result.status,
                message=message,
                at=now,
            )
            samples.append(
                HealthSample(
                    cluster=cluster,
                    node_id=node_id,
                    component=component,
                    target=key[2],
                    status=result.status,
                    latency_ms=result.latency_ms,
                    checked_at=now,
                )
            )
            row = current.get(key)
            if row is None:
                created.append(
                    ComponentHealth(
                        cluster=cluster,
                        node_id=node_id,
                        component=component,
                        target=key[2],
                        status=result.status,
                        latency_ms=result.latency_ms,
                        message=message,
                        checked_at=now,
                        changed_at=now,
                    )
                )
                events.append(event(from_status=""))
                continue
            if row.status != result.status:
                events.append(event(from_status=row.status))
                row.changed_at = now
            row.status, row.latency_ms, row.message, row.checked_at = (
                result.status,
                result.latency_ms,
                message,
                now,
            )
            updated.append(row)
        ComponentHealth.objects.bulk_create(created)
        ComponentHealth.objects.bulk_update(
            updated, ["status", "latency_ms", "message", "checked_at", "changed_at"]
        )
        gone = [h.pk for key, h in current.items() if key not in seen]
        if gone:
            ComponentHealth.objects.filter(pk__in=gone).delete()
        new_samples, merged = _merged_samples(cluster, samples, now)
        HealthSample.objects.bulk_create(new_samples)
        HealthSample.objects.bulk_update(merged, ["latency_ms", "status", "checked_at", "samples"])
        HealthEvent.objects.bulk_create(events)
        _alert_transitions(cluster, events)


# A change between these is an alert (healthy → unhealthy and back); "unknown" (the panel could
# not check) and a check's first result are recorded as events but alert no one.
ALERTED = frozenset({"healthy", "degraded", "unhealthy"})


def _alert_transitions(cluster: Cluster, events: list[HealthEvent]) -> None:
    """One alert per transition (its key names the check and the moment), sent after commit."""
    from nodes.alerts.services import notify

    changes = [e for e in events if e.from_status in ALERTED and e.to_status in ALERTED]
    if not changes:
        return
    names: dict[int | None, str] = dict(
        Node.objects.filter(cluster=cluster).values_list("pk", "name")
    )
    for event in changes:
        where = names.get(event.node_id, "the control-plane endpoint")
        change = f"{event.from_status} → {event.to_status}"
        notify(
            cluster,
            f"health:{event.component}:{event.node_id}:{event.target}:{event.at.isoformat()}",
            f"[{cluster.name}] {event.component} on {where}: {change}",
            {
                "kind": "health",
                "cluster": cluster.name,
                "component": event.component,
                "node": names.get(event.node_id),
                "target": event.target,
                "from": event.from_status,
                "to": event.to_status,
                "message": event.message,
                "at": event.at.isoformat(),
            },
        )


def metric_rows() -> list[HealthRow]:
    """Every check's latest result for ``/metrics`` (one query, whatever the number of nodes)."""
    rows = ComponentHealth.objects.select_related("cluster", "node").order_by("pk")
    return [
        HealthRow(
            cluster=row.cluster.name,
            node=row.node.name if row.node is not None else "",
            component=row.component,
            status=row.status,
            latency_seconds=row.latency_ms / 1000.0,
        )
        for row in rows
    ]


@transaction.atomic
def request_check(actor: Actor, cluster: Cluster) -> None:
    """Make the cluster's next round due now ("Check now"): beat (every 10 s) sends it, claimed
    once as always. Audited, as every action a user takes."""
    Cluster.objects.filter(pk=cluster.pk).update(health_next_at=None)
    audit.record("health.check_now", actor, obj=cluster, details={})
