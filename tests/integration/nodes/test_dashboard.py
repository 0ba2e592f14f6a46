"""The dashboard shows each cluster's node counts by role and its soonest certificate expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from pki.models import Certificate
from pki.services import certificates as certificate_services
from tests.factories import make_cluster, make_node


@pytest.mark.django_db
def test_dashboard_shows_role_counts_and_the_soonest_expiry(
    web_client: Callable[[str], Any],
) -> None:
    cluster = make_cluster("dash", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    make_node(cluster)  # cp-1
    make_node(cluster, "worker")  # w-1
    make_node(cluster, "worker")  # w-2
    make_cluster("empty", control_plane_endpoint="10.1.0.10")
    certificate_services.issue_missing(cluster)
    # One certificate close to expiry decides the badge.
    soon = Certificate.objects.filter(cluster=cluster, status="active").first()
    assert soon is not None
    Certificate.objects.filter(pk=soon.pk).update(
        not_after=timezone.now() + timedelta(days=5, hours=1)
    )

    response = web_client("viewer").get("/")
    assert response.status_code == 200
    by_name = {row.cluster.name: row for row in response.context["rows"]}
    dash = by_name["dash"]
    # Counts stay right although the query joins many certificates per cluster.
    counts = (dash.cluster.control_plane_count, dash.cluster.worker_count, dash.cluster.node_count)
    assert counts == (1, 2, 3)
    assert dash.days_left == 5
    assert dash.band == "critical"
    html = response.content.decode()
    assert "band-critical" in html
    assert by_name["empty"].next_expiry is None
    assert "No certificates issued yet." in html
