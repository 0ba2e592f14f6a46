"""The clusters API counts each cluster's nodes by role: in the list and a cluster's page (counted
by the database, per cluster of the page), and in the answer to a create or an update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodes.models import NodeRole
from tests.factories import make_cluster, make_node


@pytest.mark.django_db
def test_the_api_counts_each_clusters_nodes_by_role(api_client: Callable[[str], Any]) -> None:
    stacked = make_cluster("counted-stacked")
    for _ in range(2):
        make_node(stacked, NodeRole.CONTROL_PLANE)
    for _ in range(3):
        make_node(stacked, NodeRole.WORKER)
    external = make_cluster("counted-external", etcd_topology="external")
    make_node(external, NodeRole.CONTROL_PLANE)
    for _ in range(2):
        make_node(external, NodeRole.ETCD)
    empty = make_cluster("counted-empty")
    expected = {
        stacked.pk: {"control-plane": 2, "worker": 3, "etcd": 0},
        external.pk: {"control-plane": 1, "worker": 0, "etcd": 2},
        empty.pk: {"control-plane": 0, "worker": 0, "etcd": 0},
    }

    viewer = api_client("viewer")
    listed = viewer.get("/api/v1/clusters/")
    assert listed.status_code == 200
    counts = {row["id"]: row["node_counts"] for row in listed.json()["results"]}
    assert {pk: counts[pk] for pk in expected} == expected
    for pk, want in expected.items():
        assert viewer.get(f"/api/v1/clusters/{pk}/").json()["node_counts"] == want

    operator = api_client("operator")
    updated = operator.patch(
        f"/api/v1/clusters/{stacked.pk}/", {"description": "counted"}, format="json"
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["node_counts"] == expected[stacked.pk]
    created = operator.post(
        "/api/v1/clusters/",
        {"name": "counted-new", "control_plane_endpoint": "10.0.0.10:6443"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["node_counts"] == {"control-plane": 0, "worker": 0, "etcd": 0}
