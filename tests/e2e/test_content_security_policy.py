"""Every kind of page the panel serves, in Chromium, under its Content-Security-Policy: the
policy is sent, and nothing on the pages (htmx, the join card, the expiry bars, the admin, the
browsable API, Swagger UI, the error pages) needs more than it allows.

The ``page_as`` fixture fails the test on any violation Chromium reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from nodes.health import services as health_services
from nodes.health.probes import ProbeResult
from pki.models import Certificate
from pki.services import bootstrap as bootstrap_services
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POLICY = "default-src 'self'"


def _open(page: Any, path: str, status: int = 200) -> Any:
    response = page.goto(path)
    assert response is not None and response.status == status, (path, response and response.status)
    assert response.headers["content-security-policy"].startswith(POLICY), path
    page.wait_for_load_state("networkidle")
    return response


def test_no_page_needs_more_than_the_policy_allows(
    page_as: Callable[[str | None], Any], personas: dict[str, User]
) -> None:
    cluster = make_cluster("lab", key_algorithm="ECDSA-P256")
    nodes = make_nodes(
        cluster, [("cp-1", "10.0.0.11", "control-plane"), ("w-1", "10.0.1.1", "worker")]
    )
    certificate_services.issue_missing(cluster, actor=SETUP)
    bootstrap_services.new_join_token(cluster, actor=SETUP)
    bootstrap_services.ensure_certificate_key(cluster, actor=SETUP)
    cert = Certificate.objects.filter(cluster=cluster).order_by("pk").first()
    assert cert is not None
    # Two health rounds, so that the Health tab draws a sparkline (inline SVG, no style).
    for minutes in (30, 0):
        at = timezone.now() - timedelta(minutes=minutes)
        result = ProbeResult("healthy", 4.0 + minutes, "reachable")
        health_services.record(cluster, [("ssh", nodes[0].pk, "10.0.0.11:22", result)], at)
    personas["admin"].is_superuser = True
    personas["admin"].save(update_fields=["is_superuser"])
    c = cluster.pk

    page = page_as("admin")
    for path in (
        "/",
        "/clusters/",
        f"/clusters/{c}/certificates/",
        f"/clusters/{c}/authorities/",
        f"/clusters/{c}/tokens/",
        f"/clusters/{c}/config/",
        f"/clusters/{c}/config/nodes/{nodes[0].pk}/",
        f"/clusters/{c}/health/",
        "/pki/inspect/",
        "/jobs/",
        "/admin/",
        "/admin/nodes/node/",
        f"/admin/nodes/node/{nodes[0].pk}/change/",
        f"/admin/pki/certificate/{cert.pk}/change/",
        "/admin/clusterpanel/auditevent/",
        "/api/v1/",
        f"/api/v1/certificates/{cert.pk}/",
        f"/api/v1/clusters/{c}/",
        f"/api/v1/clusters/{c}/health/",
    ):
        _open(page, path)
    # The browsable API still offers a viewset's extra actions (drawn without inline style).
    _open(page, f"/api/v1/certificates/{cert.pk}/")
    assert page.get_by_role("button", name="Extra Actions").count() == 1
    _open(page, f"/clusters/{c}/certificates/")
    assert (
        page.locator("meter.expiry-bar").count()
        == Certificate.objects.filter(cluster=cluster, status="active").count()
    )

    # The overview: htmx loads the join card, Show reveals, the inline node form opens and
    # its Cancel closes it again.
    _open(page, f"/clusters/{c}/")
    page.locator("#join-worker").wait_for()
    page.click("#join-worker-show")
    page.locator("#join-worker[data-revealed]").wait_for()
    page.get_by_role("link", name="Add node").click()
    page.locator("#node-form-slot form").wait_for()
    page.locator("#node-form-slot").get_by_role("link", name="Cancel").click()
    assert page.locator("#node-form-slot form").count() == 0
    # A confirmation comes from the page's script, not an inline handler.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete").first.click()
    assert page.url.endswith(f"/clusters/{c}/")

    # Swagger UI renders the schema.
    _open(page, "/api/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()

    # The error pages, in the panel's layout with its navigation.
    _open(page, "/no-such-page/", 404)
    assert page.locator("#error-page h1").inner_text() == "Not found"
    assert page.get_by_role("navigation", name="Main").count() == 1
    viewer = page_as("viewer")
    _open(viewer, f"/clusters/{c}/edit/", 403)
    assert viewer.locator("#error-page h1").inner_text() == "Not allowed"
    assert viewer.get_by_role("link", name="Dashboard").count() >= 1
    anonymous = page_as(None)
    _open(anonymous, "/login/")
