"""Node labels: entered on the node form, listed in the cluster's nodes table, and handed to
the kubelet through the node's kubeadm configuration."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from nodes.models import Cluster, Node
from pki.services import certificates as certificate_services
from tests.factories import make_node

pytestmark = pytest.mark.django_db


def _row(html: str, node: Node) -> str:
    match = re.search(rf'<tr id="node-{node.pk}">.*?</tr>', html, re.S)
    assert match, html
    return match.group(0)


def test_labels_from_the_form_show_in_the_table_and_reach_the_kubelet(
    web_client: Callable[[str], Any], api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    client = web_client("operator")
    form = {
        "name": "w-1",
        "address": "10.0.0.21",
        "ssh_port": 22,
        "ssh_user": "root",
        "role": "worker",
        "labels": "topology.kubernetes.io/zone=eu-1a\ngpu=nvidia",
        "taints": "",
    }
    created = client.post(f"/clusters/{cluster.pk}/nodes/new/", form)
    assert created.status_code == 302
    node = Node.objects.get(cluster=cluster, name="w-1")
    assert node.labels == {"topology.kubernetes.io/zone": "eu-1a", "gpu": "nvidia"}

    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "<th>Labels</th>" in page
    row = _row(page, node)
    assert "<code>topology.kubernetes.io/zone=eu-1a</code>" in row
    assert "<code>gpu=nvidia</code>" in row

    # The row htmx swaps in after an inline edit shows the new labels too.
    edited = client.post(
        f"/nodes/{node.pk}/edit/", {**form, "labels": "gpu=amd"}, HTTP_HX_REQUEST="true"
    )
    row = _row(edited.content.decode(), node)
    assert "<code>gpu=amd</code>" in row and "eu-1a" not in row

    certificate_services.ensure_cluster_cas(cluster)  # a join file carries the CA's hash
    config = api_client("operator").get(
        f"/api/v1/clusters/{cluster.pk}/kubeadm-config/", {"node": node.pk, "new_token": "1"}
    )
    assert config.status_code == 200, config.content
    join = next(yaml.safe_load_all(config.content))
    assert join["kind"] == "JoinConfiguration"
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-labels", "value": "gpu=amd"}
    ]


def test_a_node_without_labels_says_so(web_client: Callable[[str], Any], cluster: Cluster) -> None:
    node = make_node(cluster, "worker", "cp-1", "10.0.0.11")
    row = _row(web_client("viewer").get(f"/clusters/{cluster.pk}/").content.decode(), node)
    assert '<td class="node-labels"><span class="muted">none</span></td>' in row
