"""The dashboard shows each cluster's node counts by role and its soonest certificate expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from nodes.models import Cluster, Node
from pki.models import Certificate
from pki.services import certificates as certificate_services
from tests.actors import SETUP


@pytest.mark.django_db
def test_dashboard_shows_role_counts_and_the_soonest_expiry(
    web_client: Callable[[str], Any],
) -> None:
    cluster = Cluster.objects.create(
        name="dash", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256"
    )
    Node.objects.create(cluster=cluster, name="cp-1", address="10.0.0.11", role="control-plane")
    Node.objects.create(cluster=cluster, name="w-1", address="10.0.0.21", role="worker")
    Node.objects.create(cluster=cluster, name="w-2", address="10.0.0.22", role="worker")
    Cluster.objects.create(name="empty", control_plane_endpoint="10.1.0.10")
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
    stacked = Cluster.objects.create(name="stacked", control_plane_endpoint="10.0.0.10")
    for index in (1, 2, 3):
        Node.objects.create(
            cluster=stacked, name=f"cp-{index}", address=f"10.0.0.1{index}", role="control-plane"
        )
    Node.objects.create(cluster=stacked, name="w-1", address="10.0.0.21", role="worker")
    external = Cluster.objects.create(
        name="external", control_plane_endpoint="10.1.0.10", etcd_topology="external"
    )
    Node.objects.create(cluster=external, name="cp-1", address="10.1.0.11", role="control-plane")
    for index in (1, 2):
        Node.objects.create(
            cluster=external, name=f"etcd-{index}", address=f"10.1.0.3{index}", role="etcd"
        )

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
