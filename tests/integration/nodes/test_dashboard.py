"""The dashboard shows each cluster's node counts by role and its soonest certificate expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from pki.models import Certificate
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.empty_state import action_link, empty_state
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
    certificate_services.issue_missing(cluster, actor=SETUP)
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


@pytest.mark.django_db
def test_stacked_clusters_count_their_control_plane_nodes_as_etcd_members(
    web_client: Callable[[str], Any],
) -> None:
    stacked = make_cluster("stacked", control_plane_endpoint="10.0.0.10")
    for _ in range(3):
        make_node(stacked)  # cp-1, cp-2, cp-3
    make_node(stacked, "worker")  # w-1
    external = make_cluster(
        "external", control_plane_endpoint="10.1.0.10", etcd_topology="external"
    )
    make_node(external, address="10.1.0.11")  # cp-1
    for index in (1, 2):
        make_node(external, "etcd", address=f"10.1.0.3{index}")  # etcd-1, etcd-2

    client = web_client("viewer")
    response = client.get("/")
    by_name = {row.cluster.name: row.cluster for row in response.context["rows"]}
    assert by_name["stacked"].etcd_member_count == 3
    assert by_name["external"].etcd_member_count == 2
    html = response.content.decode()
    assert "<dt>etcd (stacked on the control plane)</dt><dd>3</dd>" in html
    assert "<dt>etcd</dt><dd>2</dd>" in html
    listing = client.get("/clusters/")
    members = {c.name: c.etcd_member_count for c in listing.context["clusters"]}
    assert members == {"external": 2, "stacked": 3}


@pytest.mark.django_db
def test_without_clusters_operators_are_offered_the_first_and_viewers_told_who_adds_it(
    web_client: Callable[[str], Any],
) -> None:
    for url, table in (("/", None), ("/clusters/", "clusters-table")):
        operator = empty_state(web_client("operator").get(url).content.decode(), table)
        assert operator.startswith("No clusters yet.") and "An operator" not in operator
        assert action_link(operator) == "/clusters/new/"
        viewer = empty_state(web_client("viewer").get(url).content.decode(), table)
        assert viewer == "No clusters yet. An operator can add one."
        assert action_link(viewer) is None
