"""Fixtures for the token, join-command and kubeadm-configuration tests."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.models import Cluster, Node
from tests.factories import make_cluster, make_node


@pytest.fixture
def ecdsa_cluster(db: Any) -> Cluster:
    return make_cluster(
        "edge", control_plane_endpoint="[fd00:10::1]:6443", key_algorithm="ECDSA-P256"
    )


@pytest.fixture
def nodes(cluster: Cluster) -> dict[str, Node]:
    """Two control-plane nodes and a worker of the ``cluster`` fixture."""
    return {
        "cp-1": make_node(cluster, name="cp-1", address="10.0.0.11"),
        "cp-2": make_node(cluster, name="cp-2", address="10.0.0.12"),
        "w-1": make_node(
            cluster, "worker", name="w-1", address="10.0.0.21", taints=["dedicated=gpu:NoSchedule"]
        ),
    }
