"""``/metrics``: Prometheus text that prometheus_client's own parser reads, with the expiry series
of every issued certificate, job counts and durations; token-protected; constant queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.models import ApiToken
from nodes import metrics
from nodes.metrics import HealthCollector, HealthRow, cert_path
from pki.models import Certificate, CertificateAuthority
from pki.services.certificates import issue_missing
from tests.actors import SETUP
from tests.factories import make_cluster, make_node, make_user

pytestmark = pytest.mark.django_db


def _families(text: str) -> dict[str, list]:  # type: ignore[type-arg]
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def _scrape(client: Client, token: str) -> tuple[str, int]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.content.decode(), response.status_code


def test_metrics_carry_every_certificate_and_the_jobs_in_constant_queries(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CLUSTERPANEL_METRICS_TOKEN = "scrape-secret"
    cluster = make_cluster("metrics", key_algorithm="ECDSA-P256")
    make_node(cluster, "control-plane", name="cp-a")
    make_node(cluster, "worker", name="w-a")
    issue_missing(cluster, actor=SETUP)
    now = timezone.now()
    Job.objects.create(kind="facts", cluster=cluster, status=JobStatus.QUEUED)
    for seconds, status in (
        (3, JobStatus.SUCCEEDED),
        (40, JobStatus.SUCCEEDED),
        (90, JobStatus.FAILED),
    ):
        Job.objects.create(
            kind="facts",
            cluster=cluster,
            status=status,
            started_at=now - timedelta(seconds=seconds),
            finished_at=now,
        )
    client = Client()
    text, status = _scrape(client, "scrape-secret")
    assert status == 200
    families = _families(text)

    not_after = {
        (s.labels["cluster"], s.labels["node"], s.labels["filepath"]): s.value
        for s in families["x509_cert_not_after"]
    }
    leaves = list(Certificate.objects.filter(cluster=cluster, status="active"))
    cas = list(CertificateAuthority.objects.filter(cluster=cluster, status="active"))
    assert leaves and len(cas) == 3
    for cert in leaves:
        key = ("metrics", cert.node_name, cert_path(cert.name, cert.kind))
        assert not_after[key] == pytest.approx(cert.not_after.timestamp())
    for ca in cas:
        assert not_after[("metrics", "", cert_path(ca.name))] == pytest.approx(
            ca.not_after.timestamp()
        )
    assert len(not_after) == len(leaves) + len(cas)
    assert ("metrics", "cp-a", "/etc/kubernetes/pki/apiserver.crt") in not_after
    assert ("metrics", "", "/etc/kubernetes/pki/etcd/ca.crt") in not_after
    apiserver = next(
        s for s in families["x509_cert_not_after"] if s.labels["filename"] == "apiserver.crt"
    )
    assert apiserver.labels["subject_CN"] == "kube-apiserver"
    assert apiserver.labels["issuer_CN"] and apiserver.labels["serial_number"]
    assert {s.value for s in families["x509_cert_expired"]} == {0.0}

    counts = {
        (s.labels["kind"], s.labels["status"]): s.value for s in families["clusterpanel_jobs"]
    }
    assert counts == {("facts", "queued"): 1, ("facts", "succeeded"): 2, ("facts", "failed"): 1}
    hist = {
        (s.name, s.labels["status"], s.labels.get("le")): s.value
        for s in families["clusterpanel_job_duration_seconds"]
    }
    assert hist[("clusterpanel_job_duration_seconds_bucket", "succeeded", "5.0")] == 1
    assert hist[("clusterpanel_job_duration_seconds_bucket", "succeeded", "60.0")] == 2
    assert hist[("clusterpanel_job_duration_seconds_bucket", "failed", "60.0")] == 0
    assert hist[("clusterpanel_job_duration_seconds_bucket", "failed", "+Inf")] == 1
    assert hist[("clusterpanel_job_duration_seconds_count", "succeeded", None)] == 2
    assert hist[("clusterpanel_job_duration_seconds_sum", "succeeded", None)] == pytest.approx(
        43, abs=0.01
    )
    # No process or platform series: only what the panel's database says.
    assert not any(name.startswith(("process_", "python_")) for name in families)

    # More clusters, nodes, certificates and jobs: the same number of queries per scrape.
    with CaptureQueriesContext(connection) as before:
        _scrape(client, "scrape-secret")
    other = make_cluster("metrics-2", key_algorithm="ECDSA-P256")
    for i in range(3):
        make_node(other, "control-plane", name=f"cp-{i}")
    issue_missing(other, actor=SETUP)
    Job.objects.create(
        kind="install", cluster=other, status=JobStatus.ERRORED, started_at=now, finished_at=now
    )
    with CaptureQueriesContext(connection) as after:
        text, _ = _scrape(client, "scrape-secret")
    assert len(after) == len(before)
    assert any(s.labels["cluster"] == "metrics-2" for s in _families(text)["x509_cert_not_after"])


def test_metrics_need_the_token_or_a_viewer(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CLUSTERPANEL_METRICS_TOKEN = "scrape-secret"
    client = Client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert _scrape(client, "wrong")[1] == 401
    viewer_token, viewer_key = ApiToken.issue(make_user("scraper", "viewer"), name="prometheus")
    _outsider, outsider_key = ApiToken.issue(make_user("nobody"), name="x")
    assert _scrape(client, viewer_key)[1] == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {viewer_key}").status_code == 200
    assert _scrape(client, outsider_key)[1] == 403
    viewer_token.revoke()
    assert _scrape(client, viewer_key)[1] == 401
    settings.CLUSTERPANEL_METRICS_TOKEN = ""
    # An empty setting is no token: an empty bearer never passes.
    assert _scrape(client, "")[1] == 401


def test_health_rows_become_gauges_and_latency_histograms() -> None:
    rows = [
        HealthRow("c1", "cp-1", "kube-apiserver", "healthy", 0.02),
        HealthRow("c1", "cp-2", "kube-apiserver", "unhealthy", 3.0),
        HealthRow("c1", "cp-1", "etcd", "unknown", None),
    ]
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(lambda: rows))
    families = _families(generate_latest(registry).decode())
    healthy = {
        (s.labels["node"], s.labels["component"]): s.value
        for s in families["clusterpanel_component_healthy"]
    }
    assert healthy == {
        ("cp-1", "kube-apiserver"): 1,
        ("cp-2", "kube-apiserver"): 0,
        ("cp-1", "etcd"): 0,
    }
    current = {
        (s.labels["node"], s.labels["component"])
        for s in families["clusterpanel_component_status"]
        if s.value == 1 and s.labels["status"] == "unhealthy"
    }
    assert current == {("cp-2", "kube-apiserver")}
    latency = {
        (s.name, s.labels.get("le")): s.value
        for s in families["clusterpanel_check_latency_seconds"]
    }
    assert latency[("clusterpanel_check_latency_seconds_bucket", "0.025")] == 1
    assert latency[("clusterpanel_check_latency_seconds_count", None)] == 2
    # The registration hook adds a source to every scrape's registry.
    metrics.register_health_source(lambda: rows)
    try:
        names = {m.name for m in metrics.registry().collect()}
        assert "clusterpanel_component_healthy" in names
    finally:
        metrics._HEALTH_SOURCES.clear()
