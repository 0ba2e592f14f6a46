"""Alert delivery: a local HTTP sink (http.server on loopback, allowed by
CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS) receives exactly one signed webhook per alert key, and a
retry after it was down; internal addresses are refused when saved and when delivered; e-mail
(Django's locmem backend) gets one expiry digest per cluster and run, each certificate once per
band, from the ledger and from the nodes' scans, while time-machine moves the clock.

Attempts are run by calling the delivery task's body (``services.attempt``) and the retry sweep
directly; the task messages a failed attempt would send are recorded instead of queued."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from clusterpanel.models import AuditEvent
from nodes.alerts import services, signing
from nodes.alerts.expiry import alert_expiry_bands
from nodes.alerts.models import AlertDelivery, AlertSettings, DeliveryStatus, ExpiryNotice
from nodes.alerts.tasks import retry_alert_deliveries
from nodes.health.findings import ScannedCertificate
from nodes.models import Cluster
from pki.models import Certificate, CertificateAuthority
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.empty_state import action_link, empty_state
from tests.factories import make_cluster, make_node, make_personas

pytestmark = pytest.mark.django_db
SECRET = "hook-secret"


class Sink:
    """An HTTP server on 127.0.0.1 that records every POST and answers 204."""

    def __init__(self, port: int = 0) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append({"headers": dict(self.headers), "body": self.rfile.read(length)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _local_sink_allowed(settings: Any) -> None:
    settings.CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS = "127.0.0.1"


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.stop()


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(
        services, "_dispatch", lambda pk, countdown=0: calls.append((pk, countdown))
    )
    return calls


def _hooked(url: str, **extra: Any) -> Cluster:
    cluster = make_cluster("alerts", key_algorithm="ECDSA-P256")
    services.update_alert_settings(
        SETUP, cluster, webhook_url=url, email_recipients=[], webhook_secret=SECRET, **extra
    )
    return cluster


def _listed(body: str) -> list[str]:
    """The lines of an expiry digest's e-mail that list one certificate each."""
    return [line for line in body.splitlines() if line.startswith("- ")]


def _verified(request: dict[str, Any]) -> dict[str, Any]:
    header = request["headers"]["X-Clusterpanel-Signature"]
    assert header.startswith("sha256=")
    assert signing.verify(SECRET, request["body"], header)
    assert not signing.verify("other", request["body"], header)
    document: dict[str, Any] = json.loads(request["body"])
    return document


def test_one_signed_webhook_per_key(sink: Sink, dispatched: list[tuple[int, int]]) -> None:
    cluster = _hooked(f"http://127.0.0.1:{sink.port}/hook")
    first = services.notify(
        cluster, "health:apiserver:1", "apiserver unhealthy", {"component": "apiserver"}
    )
    assert len(first) == 1
    # The same key again (a second beat tick, a redelivered message): nothing new.
    assert services.notify(cluster, "health:apiserver:1", "apiserver unhealthy", {}) == []
    delivered = services.attempt(first[0].pk)
    assert delivered is not None and delivered.status == DeliveryStatus.DELIVERED
    assert services.attempt(first[0].pk) is None  # delivered: never sent again
    second = services.notify(
        cluster, "health:apiserver:2", "apiserver healthy again", {"component": "apiserver"}
    )
    retry_alert_deliveries()
    retry_alert_deliveries()
    assert len(sink.received) == 2
    documents = [_verified(request) for request in sink.received]
    assert [d["key"] for d in documents] == ["health:apiserver:1", "health:apiserver:2"]
    assert documents[0]["payload"] == {"component": "apiserver"}
    assert documents[0]["cluster"] == {"id": cluster.pk, "name": "alerts"}
    assert sink.received[1]["headers"]["X-Clusterpanel-Delivery"] == str(second[0].pk)
    row = AlertDelivery.objects.get(pk=first[0].pk)
    assert row.attempts == 1 and row.delivered_at is not None and row.attempt_log[0]["ok"]
    assert dispatched == []  # nothing failed, so no retry was scheduled
    # The secret is encrypted at rest and the audit event does not carry it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_secret FROM nodes_alertsettings WHERE cluster_id = %s", [cluster.pk]
        )
        (stored,) = cursor.fetchone()
    assert stored and SECRET not in stored
    event = AuditEvent.objects.get(action="alert_settings.update")
    assert SECRET not in json.dumps(event.details) and event.details["webhook_secret_changed"]


def test_a_failed_attempt_is_recorded_and_retried_with_backoff(
    settings: Any, dispatched: list[tuple[int, int]]
) -> None:
    settings.CLUSTERPANEL_ALERT_RETRY_SECONDS = 30
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = _hooked(f"http://127.0.0.1:{port}/hook")
    with time_machine.travel("2030-01-01 12:00Z", tick=False) as clock:
        (delivery,) = services.notify(cluster, "expiry:cert:1:band:14", "expiring", {"n": 1})
        failed = services.attempt(delivery.pk)
        assert failed is not None and failed.status == DeliveryStatus.PENDING
        assert failed.attempts == 1 and "refused" in failed.last_error.lower()
        assert failed.attempt_log[0]["ok"] is False
        assert failed.next_attempt_at is not None
        assert failed.next_attempt_at == timezone.now() + timedelta(seconds=30)
        assert dispatched == [(delivery.pk, 30)]
        # Not due yet: the sweep leaves it alone.
        assert services.attempt(delivery.pk) is None
        sink = Sink(port)
        try:
            clock.shift(timedelta(seconds=31))
            assert retry_alert_deliveries() == 1
        finally:
            sink.stop()
    row = AlertDelivery.objects.get(pk=delivery.pk)
    assert row.status == DeliveryStatus.DELIVERED and row.attempts == 2
    assert [entry["ok"] for entry in row.attempt_log] == [False, True]
    assert len(sink.received) == 1 and _verified(sink.received[0])["key"] == "expiry:cert:1:band:14"
    # Exponential: the n-th failure waits RETRY * 2**(n-1); after MAX_ATTEMPTS it gives up.
    assert [services.backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]


def test_expiry_alerts_go_out_by_email_once_per_band(
    settings: Any, dispatched: list[tuple[int, int]]
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CLUSTERPANEL_EXPIRY_BANDS = "30,14,7,1"
    settings.CLUSTERPANEL_CA_EXPIRY_BANDS = "365,180,90,30"
    cluster = make_cluster("expiring", key_algorithm="ECDSA-P256")
    make_node(cluster, "control-plane", name="cp-x")
    issue_missing(cluster, actor=SETUP)
    services.update_alert_settings(
        SETUP, cluster, webhook_url="", email_recipients=["ops@example.com"]
    )
    leaves = Certificate.objects.filter(cluster=cluster, status="active")
    expiry = min(c.not_after for c in leaves)
    count = leaves.count()

    def tick() -> list[str]:
        """One run; the subjects of the e-mails it sent (one digest per cluster)."""
        mail.outbox.clear()
        alert_expiry_bands()
        retry_alert_deliveries()
        return [message.subject for message in mail.outbox]

    with time_machine.travel(expiry - timedelta(days=40), tick=False) as clock:
        assert tick() == []  # outside every band
        clock.move_to(expiry - timedelta(days=29))
        (subject,) = tick()  # one e-mail listing every certificate that entered the band
        assert subject.startswith(f"[clusterpanel] expiring: {count} certificates entered")
        body = _listed(mail.outbox[0].body)
        assert len(body) == count and all("expires within 30 days" in line for line in body)
        assert any(line.startswith("- apiserver of cp-x expires within 30 days") for line in body)
        assert mail.outbox[0].to == ["ops@example.com"]
        assert tick() == []  # the next run (or a restart) sends the 30-day band no second time
        clock.move_to(expiry - timedelta(days=13))
        assert len(tick()) == 1
        assert sum("within 14 days" in line for line in _listed(mail.outbox[0].body)) == count
        assert tick() == []
        # Skipped straight past 7 to 1 day left: only the nearest band alerts.
        clock.move_to(expiry - timedelta(hours=20))
        assert len(tick()) == 1
        body = _listed(mail.outbox[0].body)
        assert len(body) == count and all("within 1 days" in line for line in body)
        assert tick() == []
    # CAs have their own, earlier bands; their leaves have expired by then.
    ca_expiry = min(ca.not_after for ca in CertificateAuthority.objects.filter(cluster=cluster))
    with time_machine.travel(ca_expiry - timedelta(days=300), tick=False):
        assert len(tick()) == 1
        body = _listed(mail.outbox[0].body)
        cas = [line for line in body if line.startswith("- CA ")]
        assert len(cas) == 3 and all("within 365 days" in line for line in cas)
        assert sum("expired on" in line for line in body) == count
        assert tick() == []
    notices = list(ExpiryNotice.objects.values_list("key", flat=True))
    assert len(notices) == len(set(notices)) == 4 * count + 3
    assert AlertDelivery.objects.count() == 4  # four runs with news: four digests


def test_expiry_digests_include_what_the_nodes_hold(
    settings: Any, dispatched: list[tuple[int, int]]
) -> None:
    """A scanned certificate that is the ledger's active row is announced once, as that row; one
    the ledger does not hold (kubelet's own, a node still holding a superseded certificate, an
    unknown CA) is announced as the node's file, with CA bands for a CA."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CLUSTERPANEL_EXPIRY_BANDS = "30,14,7,1"
    settings.CLUSTERPANEL_CA_EXPIRY_BANDS = "365,180,90,30"
    cluster = make_cluster("scanned", key_algorithm="ECDSA-P256")
    node = make_node(cluster, "control-plane", name="cp-s")
    issue_missing(cluster, actor=SETUP)
    services.update_alert_settings(SETUP, cluster, webhook_url="", email_recipients=["o@x.io"])
    apiserver = Certificate.objects.get(cluster=cluster, name="apiserver", status="active")
    now = timezone.now()
    common = {"cluster": cluster, "node": node, "scanned_at": now}
    ScannedCertificate.objects.bulk_create([
        # The panel's own apiserver certificate on disk: the ledger's row says it.
        ScannedCertificate(**common, path="/etc/kubernetes/pki/apiserver.crt",
            subject="CN=kube-apiserver", issuer="CN=kubernetes",
            not_after=apiserver.not_after, fingerprint=apiserver.fingerprint_sha256),
        ScannedCertificate(**common, path="/var/lib/kubelet/pki/kubelet-client-current.pem",
            subject="CN=system:node:cp-s", issuer="CN=kubernetes",
            not_after=now + timedelta(days=10), fingerprint="AA:" * 31 + "AA"),
        ScannedCertificate(**common, path="/etc/kubernetes/pki/front-proxy-ca.crt",
            subject="CN=old-ca", issuer="CN=old-ca",
            not_after=now + timedelta(days=100), fingerprint="BB:" * 31 + "BB"),
        # 40 days left: outside every leaf band, so nothing for it yet.
        ScannedCertificate(**common, path="/etc/kubernetes/pki/odd.crt",
            subject="CN=odd", issuer="CN=kubernetes",
            not_after=now + timedelta(days=40), fingerprint="CC:" * 31 + "CC"),
    ])  # fmt: skip
    assert alert_expiry_bands() == 2
    retry_alert_deliveries()
    (message,) = mail.outbox
    assert "- /var/lib/kubelet/pki/kubelet-client-current.pem on cp-s expires within 14 days" in (
        message.body
    )
    assert "- CA /etc/kubernetes/pki/front-proxy-ca.crt on cp-s expires within 180 days" in (
        message.body
    )
    assert "odd.crt" not in message.body and "apiserver" not in message.body
    # The apiserver's own band comes from the ledger, once, when it is due.
    with time_machine.travel(apiserver.not_after - timedelta(days=20), tick=False):
        mail.outbox.clear()
        alert_expiry_bands()
        retry_alert_deliveries()
        (message,) = mail.outbox
        assert message.body.count("- apiserver of cp-s expires within 30 days") == 1
    assert alert_expiry_bands() == 0


def test_internal_webhook_addresses_are_refused_when_saved_and_when_delivered(
    settings: Any, sink: Sink, dispatched: list[tuple[int, int]]
) -> None:
    settings.CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS = ""
    users = make_personas()
    cluster = make_cluster("guarded")
    api = APIClient()
    api.force_authenticate(users["operator"])
    url = f"/api/v1/clusters/{cluster.pk}/alert-settings/"
    refused = [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",  # a name resolving to loopback
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "http://0.0.0.0/hook",
        "ftp://hooks.example.com/hook",
        "file:///etc/passwd",
    ]
    for target in refused:
        answer = api.put(url, {"webhook_url": target, "email_recipients": []}, format="json")
        assert answer.status_code == 400, (target, answer.content)
        assert list(answer.json()["errors"]) == ["webhook_url"], answer.json()
    web = Client()
    web.force_login(users["operator"])
    page = web.post(f"/clusters/{cluster.pk}/alerts/", {"webhook_url": "http://169.254.169.254/"})
    assert page.status_code == 400 and b"metadata" in page.content
    assert not AlertSettings.objects.filter(cluster=cluster).exists()
    # A name that does not resolve (yet) is kept: it reaches nothing now, and each delivery
    # checks it again.
    ok = api.put(
        url, {"webhook_url": "https://hooks.invalid/a", "email_recipients": []}, format="json"
    )
    assert ok.status_code == 200, ok.content
    # Stored before the rule (or by a name that resolved elsewhere then): the delivery is refused.
    AlertSettings.objects.filter(cluster=cluster).update(
        webhook_url=f"http://127.0.0.1:{sink.port}/hook"
    )
    (delivery,) = services.notify(cluster, "k1", "s", {})
    failed = services.attempt(delivery.pk)
    assert failed is not None and "loopback" in failed.last_error and sink.received == []
    # Listed in CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS, the same host is posted to.
    settings.CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS = "hooks.internal, 127.0.0.1"
    AlertDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    delivered = services.attempt(delivery.pk)
    assert delivered is not None and delivered.status == DeliveryStatus.DELIVERED
    assert len(sink.received) == 1


def test_the_alert_settings_api(sink: Sink, dispatched: list[tuple[int, int]]) -> None:
    users = make_personas()
    cluster = make_cluster("api-alerts")
    url = f"/api/v1/clusters/{cluster.pk}/alert-settings/"
    api = APIClient()
    api.force_authenticate(users["viewer"])
    empty = api.get(url).json()
    assert empty == {
        "webhook_url": "",
        "email_recipients": [],
        "has_webhook_secret": False,
        "updated_at": None,
    }
    body = {"webhook_url": f"http://127.0.0.1:{sink.port}/h", "email_recipients": ["a@x.io"]}
    assert api.put(url, body, format="json").status_code == 403
    api.force_authenticate(users["operator"])
    saved = api.put(url, {**body, "webhook_secret": SECRET}, format="json")
    assert saved.status_code == 200 and saved.json()["has_webhook_secret"] is True
    assert SECRET not in saved.content.decode()
    kept = api.put(url, body, format="json").json()  # secret left out: kept
    assert kept["has_webhook_secret"] is True
    assert AlertSettings.objects.get(cluster=cluster).webhook_secret == SECRET
    cleared = api.put(url, {**body, "webhook_secret": ""}, format="json").json()
    assert cleared["has_webhook_secret"] is False
    bad = api.put(url, {**body, "email_recipients": ["nope"]}, format="json")
    assert bad.status_code == 400 and "email_recipients" in bad.json()["errors"]
    events = AuditEvent.objects.filter(action="alert_settings.update").order_by("pk")
    assert [e.details["webhook_secret_changed"] for e in events] == [True, False, True]
    assert all(e.via == "api" for e in events)


def test_the_alerts_tab_and_the_test_alert(sink: Sink, dispatched: list[tuple[int, int]]) -> None:
    users = make_personas()
    cluster = make_cluster("tabbed")
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/clusters/{cluster.pk}/alerts/")
    assert page.status_code == 200 and b"alert-settings-form" not in page.content
    assert client.post(f"/clusters/{cluster.pk}/alerts/test/").status_code == 403
    assert (
        client.post(f"/clusters/{cluster.pk}/alerts/", {"webhook_url": "http://x"}).status_code
        == 403
    )
    client.force_login(users["operator"])
    url = f"http://127.0.0.1:{sink.port}/hook"
    bad = client.post(f"/clusters/{cluster.pk}/alerts/", {"webhook_url": "ftp://127.0.0.1/x"})
    assert bad.status_code == 400 and b"http://" in bad.content
    bad = client.post(f"/clusters/{cluster.pk}/alerts/", {"email_recipients": "not-an-address"})
    assert bad.status_code == 400
    saved = client.post(
        f"/clusters/{cluster.pk}/alerts/",
        {
            "webhook_url": url,
            "webhook_secret": SECRET,
            "email_recipients": "a@example.com, b@example.com",
        },
    )
    assert saved.status_code == 302
    config = AlertSettings.objects.get(cluster=cluster)
    assert config.webhook_secret == SECRET and config.email_recipients == [
        "a@example.com",
        "b@example.com",
    ]
    page = client.get(f"/clusters/{cluster.pk}/alerts/")
    assert SECRET.encode() not in page.content and b"signed" in page.content
    # Saving again with the secret left blank keeps it.
    client.post(f"/clusters/{cluster.pk}/alerts/", {"webhook_url": url, "email_recipients": ""})
    assert AlertSettings.objects.get(cluster=cluster).webhook_secret == SECRET
    assert client.post(f"/clusters/{cluster.pk}/alerts/test/").status_code == 302
    (delivery,) = AlertDelivery.objects.filter(cluster=cluster)
    assert delivery.key.startswith("test:")
    assert dispatched == []  # a test run: the on-commit dispatch never ran
    services.attempt(delivery.pk)
    assert _verified(sink.received[0])["payload"]["kind"] == "test"
    event = AuditEvent.objects.get(action="alert.test")
    assert event.actor == users["operator"] and event.details["channels"] == ["webhook"]


def test_no_deliveries_yet_sends_operators_to_the_settings_and_tells_viewers_who_sets_them(
    web_client: Any,
) -> None:
    cluster = make_cluster("silent")
    url = f"/clusters/{cluster.pk}/alerts/"
    operator = web_client("operator").get(url).content.decode()
    state = empty_state(operator)
    assert state.startswith("No alerts sent yet.") and action_link(state) == "#alert-settings-form"
    assert 'id="alert-settings-form"' in operator
    viewer = empty_state(web_client("viewer").get(url).content.decode())
    assert viewer == "No alerts sent yet. An operator can set where they go."
