"""The test factories: valid rows, and the names and addresses other tests rely on."""

from __future__ import annotations

import pytest

from nodes.models import Cluster
from tests.factories import make_cluster, make_node, make_nodes, make_personas


@pytest.mark.django_db
def test_clusters_get_the_model_defaults_an_endpoint_and_unused_names() -> None:
    first, second = make_cluster(), make_cluster()
    assert (first.name, second.name) == ("cluster-1", "cluster-2")
    assert first.control_plane_endpoint == "lb.example.internal:6443"
    assert (first.key_algorithm, first.etcd_topology) == ("RSA-2048", "stacked")
    prod = make_cluster("prod", key_algorithm="ECDSA-P256", extra_sans=["api.example.com"])
    assert Cluster.objects.get(name="prod").key_algorithm == "ECDSA-P256"
    assert prod.extra_sans == ["api.example.com"]
    for cluster in (first, second, prod):
        cluster.full_clean()


@pytest.mark.django_db
def test_nodes_are_numbered_per_role_and_skip_what_the_cluster_uses() -> None:
    cluster = make_cluster(etcd_topology="external")
    made = [
        make_node(cluster),
        make_node(cluster, "worker"),
        make_node(cluster),
        make_node(cluster, "worker", taints=[]),
        make_node(cluster, name="cp-4"),
    ]
    assert [(n.name, n.address, n.role) for n in made] == [
        ("cp-1", "10.0.0.11", "control-plane"),
        ("w-1", "10.0.0.21", "worker"),
        ("cp-2", "10.0.0.12", "control-plane"),
        ("w-2", "10.0.0.22", "worker"),
        ("cp-4", "10.0.0.13", "control-plane"),
    ]
    assert made[3].taints == []
    # A taken name or address is skipped, not reused.
    make_node(cluster, "etcd", name="etcd-1", address="10.0.0.14")
    third = make_node(cluster)
    assert (third.name, third.address) == ("cp-3", "10.0.0.15")
    etcd = make_node(cluster, "etcd")
    assert (etcd.name, etcd.address) == ("etcd-2", "10.0.0.32")
    for node in cluster.nodes.all():
        node.full_clean()


@pytest.mark.django_db
def test_make_nodes_takes_name_address_role_rows_and_other_clusters_do_not_count() -> None:
    rows = [("cp-1", "10.2.0.11", "control-plane"), ("etcd-1", "10.2.0.31", "etcd")]
    nodes = make_nodes(make_cluster(etcd_topology="external"), rows)
    assert [(n.name, n.address, n.role) for n in nodes] == rows
    assert make_node(make_cluster()).address == "10.0.0.11"


@pytest.mark.django_db
def test_personas_hold_their_roles() -> None:
    personas = make_personas()
    groups = {name: [g.name for g in user.groups.all()] for name, user in personas.items()}
    assert groups == {
        "viewer": ["viewer"],
        "operator": ["operator"],
        "admin": ["admin"],
        "outsider": [],
    }
    assert personas["admin"].is_staff and not personas["operator"].is_staff
    assert personas["viewer"].check_password("viewer-Passw0rd!")
