"""The renewal policy with the clock moved (time-machine): outside the window nothing starts;
inside it, with the leaves 80 days from expiry, one renewal in the panel and one cert-rollout
job, and nothing on the next tick; the job's outcome is alerted once; two runs at the same
moment launch one job. The rollout itself is tested in test_cert_rollout_job.py: these tests
stop at "launched" (the job's task message is recorded, not sent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core import mail
from rest_framework.test import APIClient

from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.models import AuditEvent
from nodes.alerts import services as alert_services
from nodes.alerts.models import AlertDelivery
from nodes.models import Cluster
from nodes.renewal import policy, services
from nodes.renewal.models import RenewalPolicy
from pki.models import Certificate
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_personas
from tests.races import at_once

KIND = "cert-rollout"


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Jobs whose task message would be sent (on commit), by id; nothing reaches a broker."""
    sent: list[int] = []
    monkeypatch.setattr("clusterpanel.jobs.tasks.dispatch", lambda job: sent.append(job.pk))
    monkeypatch.setattr(alert_services, "_dispatch", lambda pk, countdown=0: None)
    return sent


def _cluster() -> Cluster:
    cluster = make_cluster("renewing", key_algorithm="ECDSA-P256")
    make_node(cluster, "control-plane", name="cp-1", address="10.0.0.11")
    make_node(cluster, "worker", name="w-1", address="10.0.0.21")
    issue_missing(cluster, actor=SETUP)
    return cluster


def _expiry(cluster: Cluster) -> datetime:
    return min(
        Certificate.objects.tree().filter(cluster=cluster).values_list("not_after", flat=True)
    )


def _window_around(moment: datetime) -> dict[str, Any]:
    return {
        "enabled": True,
        "days_before": 90,
        "weekdays": [policy.WEEKDAYS[moment.weekday()]],
        "start_hour": moment.hour,
        "end_hour": (moment.hour + 1) % 24,
        "time_zone": "UTC",
    }


@pytest.mark.django_db
def test_the_policy_renews_and_launches_once_inside_its_window(
    launched: list[int], settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    users = make_personas()
    cluster = _cluster()
    alert_services.update_alert_settings(
        SETUP, cluster, webhook_url="", email_recipients=["ops@example.com"]
    )
    moment = (_expiry(cluster) - timedelta(days=80)).replace(minute=30)
    api = APIClient()
    url = f"/api/v1/clusters/{cluster.pk}/renewal-policy/"

    # Off by default; every role reads it, only admins change it; errors name their field.
    api.force_authenticate(users["viewer"])
    answer = api.get(url).json()
    assert answer["enabled"] is False and answer["days_before"] == 90
    assert answer["window"] == "mon, tue, wed, thu, fri 02:00-06:00 UTC"
    api.force_authenticate(users["operator"])
    assert api.put(url, _window_around(moment), format="json").status_code == 403
    api.force_authenticate(users["admin"])
    for field, wrong in (("time_zone", "Mars/Olympus"), ("weekdays", ["someday"]),
                         ("end_hour", 24), ("days_before", 0)):  # fmt: skip
        bad = api.put(url, {**_window_around(moment), field: wrong}, format="json")
        errors = bad.json()["errors"]
        assert bad.status_code == 400 and any(k.split(".")[0] == field for k in errors), errors
    assert not RenewalPolicy.objects.exists()
    saved = api.put(url, _window_around(moment), format="json")
    assert saved.status_code == 200 and saved.json()["acting_user"] == "admin"
    (event,) = AuditEvent.objects.filter(action="renewal_policy.update")
    assert event.details["weekdays"] == [policy.WEEKDAYS[moment.weekday()]]

    before = set(Certificate.objects.tree().filter(cluster=cluster).values_list("pk", flat=True))
    with time_machine.travel(moment - timedelta(hours=3), tick=False):
        (outcome,) = services.run_policies()
        assert outcome.action == "skipped" and "window" in outcome.detail
    assert not Job.objects.exists() and not AuditEvent.objects.filter(action="pki.renew").exists()

    with time_machine.travel(moment, tick=False) as clock:
        (outcome,) = services.run_policies()
        assert outcome.action == "launched", outcome
        (job,) = Job.objects.all()
        assert job.kind == KIND and job.via == "schedule" and job.launched_by == users["admin"]
        assert sorted(job.target_node_ids) == sorted(cluster.nodes.values_list("pk", flat=True))
        assert job.params == {"wait_seconds": 180} and job.status == JobStatus.QUEUED
        (renewal,) = AuditEvent.objects.filter(action="pki.renew")
        assert renewal.via == "schedule" and renewal.actor == users["admin"]
        after = Certificate.objects.tree().filter(cluster=cluster)
        assert not before & set(after.values_list("pk", flat=True))  # every leaf renewed
        assert _expiry(cluster) > moment + timedelta(days=300)
        row = RenewalPolicy.objects.get(cluster=cluster)
        assert row.last_job == job and "day(s) left" in row.last_reason

        # The next tick, and one a minute later still in the window: nothing is due any more.
        clock.shift(timedelta(minutes=1))
        (again,) = services.run_policies()
        assert again.action == "skipped" and Job.objects.count() == 1
        assert AuditEvent.objects.filter(action="pki.renew").count() == 1

        # The rollout's outcome is alerted once, whatever the number of ticks after it.
        Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, explanation="cp-1: no /livez")
        services.run_policies()
        services.run_policies()
    (alert,) = AlertDelivery.objects.filter(key=f"renewal:job:{job.pk}")
    assert "failed" in alert.subject and "cp-1: no /livez" in alert.subject
    assert alert.payload["job"] == {"id": job.pk, "kind": KIND, "status": "failed"}
    assert mail.outbox == []  # delivery is the task's (recorded, not run, here)


@pytest.mark.django_db
def test_a_refused_launch_renews_nothing_and_says_why(launched: list[int]) -> None:
    users = make_personas()
    cluster = _cluster()
    alert_services.update_alert_settings(
        SETUP, cluster, webhook_url="", email_recipients=["ops@example.com"]
    )
    moment = _expiry(cluster) - timedelta(days=30)
    admin = users["admin"]
    services.update_policy(SETUP.__class__(admin, None, "web"), cluster, _window_around(moment))
    # The admin who saved it is no admin any more: the rollout (CA keys onto control-plane
    # nodes) is refused, and the renewal goes with it.
    admin.groups.set([Group.objects.get(name="viewer")])
    admin.is_staff = False
    admin.save()
    fresh = User.objects.get(pk=admin.pk)
    assert not fresh.is_superuser
    before = set(Certificate.objects.tree().filter(cluster=cluster).values_list("pk", flat=True))
    with time_machine.travel(moment, tick=False):
        (outcome,) = services.run_policies()
        services.run_policies()
    assert outcome.action == "refused" and "PermissionDenied" in outcome.detail
    assert (
        set(Certificate.objects.tree().filter(cluster=cluster).values_list("pk", flat=True))
        == before
    )
    assert not Job.objects.exists()
    assert AlertDelivery.objects.filter(key__startswith="renewal:refused:").count() == 1
    assert RenewalPolicy.objects.get(cluster=cluster).last_error.startswith("PermissionDenied")


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_the_same_moment_launch_one_job(launched: list[int]) -> None:
    users = make_personas()
    cluster = _cluster()
    moment = _expiry(cluster) - timedelta(days=80)
    services.update_policy(
        SETUP.__class__(users["admin"], None, "web"), cluster, _window_around(moment)
    )
    run: Callable[[], Any] = services.run_policies
    with time_machine.travel(moment, tick=False):
        results = at_once(run, run, run)
    for result in results:
        assert not isinstance(result, Exception), repr(result)
    actions = sorted(o.action for outcomes in results for o in outcomes)
    assert actions.count("launched") == 1, actions
    assert Job.objects.filter(kind=KIND).count() == 1 and len(launched) == 1
    assert AuditEvent.objects.filter(action="pki.renew").count() == 1


def test_beat_runs_the_renewal_task_by_its_registered_name() -> None:
    from clusterpanel.celery import app
    from nodes.renewal.tasks import run_renewal_policies

    entry = app.conf.beat_schedule["run-renewal-policies"]
    app.loader.import_default_modules()
    assert app.tasks[entry["task"]].name == run_renewal_policies.name
    assert 300 <= entry["schedule"] <= 900  # every 5 to 15 minutes
