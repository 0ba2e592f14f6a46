"""Node taints: unset means kubeadm's default for the role, an empty list means none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from nodes.models import Cluster, Node
from tests.factories import make_cluster

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def _registration(api: Any, cluster: Cluster, node_id: int) -> dict[str, Any]:
    response = api.get(
        f"/api/v1/clusters/{cluster.pk}/kubeadm-config/", {"node": node_id, "new_token": "1"}
    )
    assert response.status_code == 200, response.content
    init = next(yaml.safe_load_all(response.content))
    return dict(init["nodeRegistration"])


@pytest.mark.django_db
def test_unset_taints_give_the_control_plane_default_and_an_empty_list_gives_none(
    api_client: Callable[[str], Any],
) -> None:
    api = api_client("operator")
    cluster = make_cluster("small", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    created = api.post(
        "/api/v1/nodes/",
        {"cluster": cluster.pk, "name": "cp-1", "address": "10.0.0.11", "role": "control-plane"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["taints"] is None
    node_id = created.json()["id"]
    # A control-plane file carries the certificate key: an admin's, made first as the API asks.
    admin = api_client("admin")
    assert admin.post(f"/api/v1/clusters/{cluster.pk}/certificate-key/").status_code == 201
    assert _registration(admin, cluster, node_id)["taints"] == [CONTROL_PLANE_TAINT]

    api.patch(f"/api/v1/nodes/{node_id}/", {"taints": []}, format="json")
    assert Node.objects.get(pk=node_id).taints == []
    assert _registration(admin, cluster, node_id)["taints"] == []

    api.patch(f"/api/v1/nodes/{node_id}/", {"taints": ["gpu=yes:NoExecute"]}, format="json")
    assert _registration(admin, cluster, node_id)["taints"] == [
        {"key": "gpu", "value": "yes", "effect": "NoExecute"}
    ]


@pytest.mark.django_db
def test_the_form_sets_no_taints_only_when_asked(
    web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    client = web_client("operator")
    # As a browser sends it: every field present, the empty ones empty.
    base = {
        "name": "cp-1",
        "address": "10.0.0.11",
        "ssh_port": 22,
        "ssh_user": "root",
        "taints": "",
    }
    client.post(f"/clusters/{cluster.pk}/nodes/new/", {**base, "role": "control-plane"})
    node = Node.objects.get(name="cp-1")
    assert node.taints is None
    client.post(f"/nodes/{node.pk}/edit/", {**base, "role": "control-plane", "no_taints": "on"})
    node.refresh_from_db()
    assert node.taints == []
    both = client.post(
        f"/nodes/{node.pk}/edit/",
        {**base, "role": "control-plane", "no_taints": "on", "taints": "a=b:NoSchedule"},
    )
    assert both.status_code == 200
    assert "not both" in " ".join(both.context["form"].errors["no_taints"])
    node.refresh_from_db()
    assert node.taints == []
