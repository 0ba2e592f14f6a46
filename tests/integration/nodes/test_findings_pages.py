"""The Findings page, the fleet expiry table and their API, over findings and scanned
certificates written straight into the tables (the scan itself is tested with real hosts
elsewhere); and the daily scan scheduler, called directly (no beat, no worker)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from clusterpanel.jobs.models import Job, JobStatus
from clusterpanel.models import AuditEvent
from nodes.health.findings import Finding, ScannedCertificate
from nodes.models import Cluster, Node
from nodes.tasks import schedule_cert_scans
from tests.empty_state import action_link, empty_state
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


def _finding(cluster: Cluster, node: Node | None, kind: str, severity: str, **kw: Any) -> Finding:
    fields: dict[str, Any] = {
        "path": f"/etc/kubernetes/pki/{kind}.crt",
        "message": f"{kind} message",
        "suggestion": "renew it in the panel, then roll it out (cert-rollout)",
        "action_kind": "cert-rollout",
        **kw,
    }
    return Finding.objects.create(
        cluster=cluster, node=node, kind=kind, severity=severity, **fields
    )


def _scanned(node: Node, path: str, days: float) -> ScannedCertificate:
    return ScannedCertificate.objects.create(
        cluster=node.cluster,
        node=node,
        path=path,
        subject=f"CN={path}",
        not_after=timezone.now() + dt.timedelta(days=days),
        fingerprint="AA" * 32,
    )


def test_the_findings_page_filters_silences_and_links_the_fixing_job(
    web_client: Callable[[str], Any],
) -> None:
    a, b = make_cluster("fa"), make_cluster("fb")
    node = make_node(a, "control-plane", name="fa-cp")
    expiring = _finding(a, node, "expiring", "critical")
    key = _finding(a, None, "key-mismatch", "critical", action_kind="")
    other = _finding(b, None, "not-issued", "warning", path="/etc/kubernetes/pki/x.crt")
    _finding(a, node, "expired", "critical", resolved_at=timezone.now())
    viewer = web_client("viewer")

    page = viewer.get("/findings/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="finding-{expiring.pk}"' in html and f'id="finding-{other.pk}"' in html
    assert "expired message" not in html  # resolved
    assert ">Critical</span>" in html and ">Warning</span>" in html  # text, not colour alone
    assert "Silence" not in html.split("<tbody>")[0].split("<thead>")[1]  # viewers cannot
    assert 'href="/findings/"' in viewer.get("/").content.decode()  # the main nav

    filtered = viewer.get(
        "/findings/", {"cluster": a.pk, "severity": "critical", "kind": "expiring"}
    )
    assert f'id="finding-{expiring.pk}"' in filtered.content.decode()
    assert f'id="finding-{key.pk}"' not in filtered.content.decode()
    assert f'id="finding-{other.pk}"' not in filtered.content.decode()
    bad = viewer.get("/findings/", {"cluster": "x²", "severity": "awful", "kind": "nope"})
    assert bad.status_code == 200
    assert "severity must be one of" in bad.content.decode()
    assert "cluster must be a cluster id" in bad.content.decode()

    operator = web_client("operator")
    html = operator.get("/findings/").content.decode()
    fix = f"/clusters/{a.pk}/jobs/new/?kind=cert-rollout&amp;nodes={node.pk}"
    assert fix in html and f'id="fix-{key.pk}"' not in html

    url = f"/findings/{expiring.pk}/silence/"
    field = f"f{expiring.pk}-until"
    past = operator.post(url, {field: "2020-01-01T00:00"})
    assert (
        past.status_code == 400 and "must be a date and time in the future" in past.content.decode()
    )
    far = (timezone.now() + dt.timedelta(days=120)).strftime("%Y-%m-%dT%H:%M")
    assert "at most 90 days" in operator.post(url, {field: far}).content.decode()
    assert operator.post(url, {field: "soon"}).status_code == 400
    assert web_client("viewer").post(url, {field: far}).status_code == 403
    until = (timezone.now() + dt.timedelta(days=3)).replace(second=0, microsecond=0)
    done = operator.post(url, {field: until.strftime("%Y-%m-%dT%H:%M")})
    assert done.status_code == 302
    expiring.refresh_from_db()
    assert expiring.silenced_until == until
    event = AuditEvent.objects.get(action="finding.silence")
    assert event.details == {"finding": expiring.pk, "until": until.isoformat()}
    assert f'id="finding-{expiring.pk}"' not in viewer.get("/findings/").content.decode()
    shown = viewer.get("/findings/", {"show_silenced": "1"}).content.decode()
    assert f'id="finding-{expiring.pk}"' in shown and "silenced until" in shown


def test_the_binary_imports_finding_kinds_can_be_filtered_too(
    web_client: Callable[[str], Any], api_client: Callable[[str], Any]
) -> None:
    cluster = make_cluster("fimport")
    missing = _finding(cluster, None, "import-missing-file", "warning", action_kind="")
    scanned = _finding(cluster, None, "expiring", "warning")

    page = web_client("viewer").get("/findings/", {"kind": "import-missing-file"})
    html = page.content.decode()
    assert '<option value="import-missing-file" selected>' in html
    assert f'id="finding-{missing.pk}"' in html and f'id="finding-{scanned.pk}"' not in html
    listed = api_client("viewer").get("/api/v1/findings/", {"kind": "import-missing-file"})
    assert [r["id"] for r in listed.json()["results"]] == [missing.pk]


def test_the_findings_api_filters_and_silences(api_client: Callable[[str], Any]) -> None:
    a = make_cluster("fapi")
    node = make_node(a, "worker", name="fapi-w")
    f1 = _finding(a, node, "expiring", "warning")
    f2 = _finding(a, None, "key-mismatch", "critical", action_kind="")
    viewer, operator = api_client("viewer"), api_client("operator")

    listed = viewer.get("/api/v1/findings/", {"cluster": a.pk}).json()
    assert [r["id"] for r in listed["results"]] == [f2.pk, f1.pk]  # critical first
    assert (
        listed["results"][1]["fix_url"]
        == f"/clusters/{a.pk}/jobs/new/?kind=cert-rollout&nodes={node.pk}"
    )
    assert [
        r["id"] for r in viewer.get("/api/v1/findings/", {"severity": "warning"}).json()["results"]
    ] == [f1.pk]
    bad = viewer.get("/api/v1/findings/", {"severity": "x", "kind": "y", "cluster": "-1"})
    assert bad.status_code == 400 and {"severity", "kind", "cluster"} <= set(bad.json()["errors"])

    url = f"/api/v1/findings/{f1.pk}/silence/"
    until = timezone.now() + dt.timedelta(days=1)
    assert viewer.post(url, {"until": until.isoformat()}, format="json").status_code == 403
    refused = operator.post(url, {"until": "2000-01-01T00:00:00Z"}, format="json")
    assert refused.status_code == 400 and "until" in refused.json()["errors"]
    assert operator.post(url, {}, format="json").status_code == 400
    done = operator.post(url, {"until": until.isoformat()}, format="json")
    assert done.status_code == 200 and done.json()["silenced"] is True
    assert AuditEvent.objects.filter(action="finding.silence").count() == 1
    assert [r["id"] for r in viewer.get("/api/v1/findings/").json()["results"]] == [f2.pk]


def _fleet(clusters: int) -> None:
    from pki.services.certificates import issue_missing
    from tests.actors import SETUP

    for i in range(clusters):
        cluster = make_cluster(f"fleet{clusters}-{i}", key_algorithm="ECDSA-P256")
        scanned = make_node(cluster, "control-plane", name=f"f{clusters}-{i}-cp")
        for j in range(3):
            _scanned(scanned, f"/etc/kubernetes/pki/c{j}.crt", 5.5 + i + j * 40)
        if i == 0:
            make_node(cluster, "worker", name=f"f{clusters}-{i}-w")
            issue_missing(cluster, actor=SETUP)


def test_the_fleet_table_lists_soonest_first_with_ledger_rows_in_constant_queries(
    web_client: Callable[[str], Any],
    api_client: Callable[[str], Any],
    django_assert_max_num_queries: Any,
) -> None:
    _fleet(2)
    viewer = web_client("viewer")
    page = viewer.get("/certificates/fleet/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "ledger (not scanned)" in html  # the worker no scan read
    assert "critical: 5 days" in html  # band as text
    first = html.index("critical: 5 days")
    assert first < html.index("critical: 6 days")
    api = (
        api_client("viewer").get("/api/v1/certificates/fleet/", {"expiring_within_days": 10}).json()
    )
    assert [r["days_left"] for r in api["results"]] == [5, 6]
    assert {r["source"] for r in api["results"]} == {"scanned"}
    every = api_client("viewer").get("/api/v1/certificates/fleet/").json()
    ledger = [r for r in every["results"] if r["source"] == "ledger"]
    assert ledger and all(r["node_name"] == "f2-0-w" for r in ledger)
    cp = [r for r in every["results"] if r["node_name"] == "f2-0-cp"]
    assert all(
        r["source"] == "scanned" for r in cp
    )  # the scanned node's ledger rows are not listed
    nots = [r["not_after"] for r in every["results"]]
    assert nots == sorted(nots)
    bad = api_client("viewer").get("/api/v1/certificates/fleet/", {"expiring_within_days": "-3"})
    assert bad.status_code == 400 and "expiring_within_days" in bad.json()["errors"]
    assert (
        "expiring_within_days must be"
        in viewer.get("/certificates/fleet/", {"expiring_within_days": "x"}).content.decode()
    )

    with django_assert_max_num_queries(12) as small:
        viewer.get("/certificates/fleet/")
        api_client("viewer").get("/api/v1/certificates/fleet/")
    _fleet(20)
    with django_assert_max_num_queries(len(small.captured_queries)):
        viewer.get("/certificates/fleet/")
        api_client("viewer").get("/api/v1/certificates/fleet/")
    with django_assert_max_num_queries(len(small.captured_queries)):
        viewer.get("/findings/")


def test_schedule_cert_scans_launches_one_scan_per_cluster_with_nodes() -> None:
    first, second = make_cluster("scan-a"), make_cluster("scan-b")
    make_cluster("scan-empty")
    make_node(first, "control-plane", name="scan-a-cp")
    make_node(first, "worker", name="scan-a-w")
    make_node(second, "worker", name="scan-b-w")
    launched = schedule_cert_scans()
    jobs = list(Job.objects.order_by("pk"))
    assert launched == [job.pk for job in jobs]
    assert [(job.cluster_id, job.kind, job.via) for job in jobs] == [
        (first.pk, "cert-scan", "schedule"),
        (second.pk, "cert-scan", "schedule"),
    ]
    assert all(job.status == JobStatus.QUEUED for job in jobs)
    # While those scans are queued, the next run launches none; once one ended, that cluster
    # gets its next scan.
    assert schedule_cert_scans() == []
    Job.objects.filter(pk=jobs[0].pk).update(status=JobStatus.SUCCEEDED)
    again = schedule_cert_scans()
    assert [Job.objects.get(pk=pk).cluster_id for pk in again] == [first.pk]


def test_empty_findings_and_fleet_tables_name_the_next_step(
    web_client: Callable[[str], Any],
) -> None:
    cluster = make_cluster("quiet")
    viewer = web_client("viewer")
    # Nothing open: the silenced ones are one link away.
    state = empty_state(viewer.get("/findings/").content.decode(), "findings-table")
    assert state.startswith("No open findings:") and action_link(state) == "?show_silenced=1"
    # A filter that matches nothing offers the way back, not the unfiltered text.
    page = viewer.get("/findings/", {"cluster": cluster.pk, "severity": "critical"})
    state = empty_state(page.content.decode(), "findings-table")
    assert state.startswith("No open findings match these filters.")
    assert action_link(state) == "/findings/"
    # The fleet table: issuing is for operators; a viewer is told who issues.
    state = empty_state(viewer.get("/certificates/fleet/").content.decode(), "fleet-table")
    assert state == (
        "No certificates on any node yet. An operator can issue them on a cluster's "
        "Certificates tab."
    )
    operator = web_client("operator").get("/certificates/fleet/").content.decode()
    assert action_link(empty_state(operator, "fleet-table")) == "/clusters/"
    within = viewer.get("/certificates/fleet/", {"expiring_within_days": "7"}).content.decode()
    state = empty_state(within, "fleet-table")
    assert state.startswith("No certificates expire within 7 days.")
    assert action_link(state) == "/certificates/fleet/"
