"""A health round over the sshd test hosts (tests/hosts.py): SSH reachability with the pinned key,
the node-side checks from one command, and the results stored as status, history and
transitions. The curl and crictl stand-ins (tests/standins) answer for the control-plane
components and the container runtime, which cannot run here; nothing listens on the hosts'
6443, so the apiserver checks meet a refused connection, as on a node whose apiserver is down."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from nodes.health import services, tasks
from nodes.models import (
    AlertDelivery,
    AlertSettings,
    Cluster,
    ComponentHealth,
    HealthEvent,
    HealthSample,
    Node,
)
from pki.services import certificates as certificate_services
from tests import standins
from tests.actors import SETUP
from tests.factories import make_cluster, make_node
from tests.hosts import TestHost

SCHEDULER = "https://127.0.0.1:10259/healthz"


def _node(cluster: Cluster, role: str, host: TestHost, key_of: TestHost, key: str) -> Node:
    node = make_node(cluster, role, host.name, host.address, ssh_port=host.port,
                     ssh_user="root", ssh_private_key=key)  # fmt: skip
    node.pin_host_key(key_of.host_key_type, key_of.host_key_base64, None)
    node.save()
    return node


@pytest.mark.django_db(transaction=True)
def test_a_round_reports_each_node_component_and_records_transitions(
    test_hosts: list[TestHost], ssh_client_key: str, settings: Any
) -> None:
    settings.CLUSTERPANEL_HEALTH_CHECK_TIMEOUT = 2
    cp_host, worker_host, changed_host = test_hosts[:3]
    for host in (cp_host, worker_host):
        standins.install_standins(host, ["curl", "crictl"])
    standins.set_curl_answer(cp_host, SCHEDULER, 7, "curl: (7) Failed to connect to 127.0.0.1")
    cluster = make_cluster("health")
    cp = _node(cluster, "control-plane", cp_host, cp_host, ssh_client_key)
    worker = _node(cluster, "worker", worker_host, worker_host, ssh_client_key)
    # Pinned to another host's key: the host presents a different one.
    changed = _node(cluster, "worker", changed_host, cp_host, ssh_client_key)
    certificate_services.issue_missing(cluster, actor=SETUP)
    AlertSettings.objects.create(cluster=cluster, email_recipients=["ops@example.com"])
    before = len(changed_host.received_commands())
    # The rounds' moments, given: two in one quarter hour, the third in the next.
    t0 = services.bucket_start(timezone.now()) - timedelta(minutes=30) + timedelta(seconds=10)

    services.run_round(cluster, now=t0)

    current = {(h.component, h.node_id): h for h in ComponentHealth.objects.filter(cluster=cluster)}
    status = {key: h.status for key, h in current.items()}
    assert status[("ssh", cp.pk)] == "healthy"
    assert status[("kube-controller-manager", cp.pk)] == "healthy"
    assert status[("kubelet", cp.pk)] == "healthy" and status[("kube-proxy", cp.pk)] == "healthy"
    assert status[("container-runtime", cp.pk)] == "healthy"
    scheduler = current[("kube-scheduler", cp.pk)]
    assert scheduler.status == "unhealthy"
    assert scheduler.message == (
        "healthz failed (curl exit 7): connection refused: nothing listens there; "
        "curl: (7) Failed to connect to 127.0.0.1"
    )
    assert ("kube-scheduler", worker.pk) not in status  # only control-plane nodes have one
    assert status[("kubelet", worker.pk)] == "healthy"
    assert status[("ssh", changed.pk)] == "unhealthy"
    assert current[("ssh", changed.pk)].message.startswith("host key changed: pinned ")
    assert ("kubelet", changed.pk) not in status
    assert len(changed_host.received_commands()) == before  # nothing ran on the changed host
    livez = current[("kube-apiserver livez", cp.pk)]
    assert livez.status == "unhealthy"
    assert livez.message == f"connection to {cp_host.address}:6443 refused"
    etcd = current[("etcd", cp.pk)]
    assert (etcd.status, etcd.message) == (
        "unhealthy",
        f"connection to {cp_host.address}:2379 refused",
    )
    assert current[("etcd alarms", None)].status == "unknown"
    # One SSH command per reachable node ran every node-side check.
    checks = [c for c in cp_host.received_commands() if "CHECK" in c]
    assert len(checks) == 1
    assert [c[1:] for c in standins.calls(cp_host, "curl")][-4:] == [
        ["-fsS", "-k", "-m", "2", "https://127.0.0.1:10257/healthz"],
        ["-fsS", "-k", "-m", "2", SCHEDULER],
        ["-fsS", "-m", "2", "http://127.0.0.1:10248/healthz"],
        ["-fsS", "-m", "2", "http://127.0.0.1:10256/healthz"],
    ]
    rows = ComponentHealth.objects.filter(cluster=cluster).count()
    assert HealthSample.objects.filter(cluster=cluster).count() == rows
    assert HealthEvent.objects.filter(cluster=cluster, from_status="").count() == rows
    assert not AlertDelivery.objects.filter(cluster=cluster).exists()  # first results alert no one

    # The scheduler comes back: one transition, every other check unchanged.
    standins.set_curl_answer(cp_host, SCHEDULER, 0, "ok")
    services.run_round(cluster, now=t0 + timedelta(seconds=60))
    moved = HealthEvent.objects.filter(cluster=cluster).exclude(from_status="")
    assert [(e.component, e.from_status, e.to_status) for e in moved] == [
        ("kube-scheduler", "unhealthy", "healthy")
    ]
    (alert,) = AlertDelivery.objects.filter(cluster=cluster)  # the transition alerts, once
    assert alert.channel == "email" and alert.key.startswith(f"health:kube-scheduler:{cp.pk}:")
    assert alert.subject == f"[health] kube-scheduler on {cp.name}: unhealthy → healthy"
    assert (alert.payload["from"], alert.payload["to"]) == ("unhealthy", "healthy")
    # The second round merged into the first's samples: one per check and quarter hour.
    history = HealthSample.objects.filter(cluster=cluster).all  # read afresh at each call
    assert history().count() == rows and {s.samples for s in history()} == {2}
    assert {s.checked_at for s in history()} == {t0 + timedelta(seconds=60)}
    merged = history().get(component="kube-scheduler", node=cp)
    assert merged.status == "healthy"  # the last round's, with the highest latency of both
    services.run_round(cluster, now=t0 + timedelta(minutes=16))  # nothing changed: no new alert
    assert AlertDelivery.objects.filter(cluster=cluster).count() == 1
    assert ComponentHealth.objects.filter(cluster=cluster).count() == rows
    assert history().count() == 2 * rows  # the next quarter hour's samples
    assert sorted(s.samples for s in history()) == [1] * rows + [2] * rows
    # History older than the kept days is pruned.
    history().update(checked_at=timezone.now() - timedelta(days=8))
    assert tasks.prune_health_history() == 2 * rows


@pytest.mark.django_db
def test_a_due_cluster_is_claimed_once_per_interval(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    cluster = make_cluster("claimed", health_interval_seconds=30)
    now = timezone.now()
    assert tasks.claim(cluster.pk, 30, now) is True
    assert tasks.claim(cluster.pk, 30, now) is False  # a second beat, the same tick
    assert tasks.claim(cluster.pk, 30, now + timedelta(seconds=29)) is False
    assert tasks.claim(cluster.pk, 30, now + timedelta(seconds=30)) is True
    cluster.refresh_from_db()
    assert cluster.health_next_at == now + timedelta(seconds=60)
