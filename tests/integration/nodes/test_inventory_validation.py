"""Bad inventory input is refused with a message naming the field, and nothing is saved.

Each case goes through the REST API (expecting 400 and the field in ``errors``)
and through the HTML forms (expecting the form re-shown with the error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from tests.factories import make_node

GOOD_CLUSTER = {
    "name": "staging",
    "kubernetes_version": "v1.31.2",
    "control_plane_endpoint": "10.0.0.10:6443",
    "cluster_name": "kubernetes",
    "pod_subnet": "10.244.0.0/16",
    "service_subnet": "10.96.0.0/12",
    "dns_domain": "cluster.local",
    "etcd_topology": "stacked",
    "key_algorithm": "RSA-2048",
    "certificate_validity_days": 365,
    "ca_validity_days": 3650,
    "container_runtime": "containerd",
    "extra_sans": [],
    "description": "",
}

# (field, bad value, a fragment of the message)
BAD_CLUSTERS = [
    ("name", "Prod_1", "DNS-1123"),
    ("name", "a" * 64, "63"),
    ("name", "prod", "already exists"),  # the fixture cluster
    ("kubernetes_version", "latest", "Kubernetes version"),
    ("kubernetes_version", "v1.19.0", "v1.24"),
    ("kubernetes_version", "v1.99.0", "not supported"),
    ("control_plane_endpoint", "https://10.0.0.10:6443", "scheme"),
    ("control_plane_endpoint", "10.0.0.10:6443/path", "path"),
    ("control_plane_endpoint", "10.0.0.10:70000", "out of range"),
    ("control_plane_endpoint", "fd00::10:6443", "brackets"),
    ("pod_subnet", "10.244.0.0", "CIDR"),
    ("pod_subnet", "10.244.1.0/16", "host bits"),
    ("pod_subnet", "10.300.0.0/16", "not a valid CIDR"),
    ("pod_subnet", "10.96.0.0/16", "overlaps the service subnet"),
    ("pod_subnet", "10.244.0.0/26", "smaller than one node"),
    ("service_subnet", "10.96.0.0/30", "too small"),
    ("service_subnet", "10.0.0.0/8", "too large"),
    ("dns_domain", "Cluster.Local", "DNS-1123"),
    ("etcd_topology", "sideways", "valid choice"),
    ("key_algorithm", "DSA-1024", "valid choice"),
    ("container_runtime", "docker", "valid choice"),
    ("certificate_validity_days", 4000, "longer than the CA validity"),
    ("certificate_validity_days", 0, "at least 1"),
    ("ca_validity_days", 40000, "100 years"),
    ("extra_sans", ["ok.example.com", "not valid!"], "not an IP address"),
    ("etcd_snapshot_retention", 0, "greater than or equal to 1"),
    ("etcd_snapshot_retention", 1001, "less than or equal to 1000"),
    ("etcd_backup_interval_hours", -1, "greater than or equal to 0"),
    ("etcd_backup_interval_hours", 24 * 365 + 1, "less than or equal to 8760"),
]

GOOD_NODE = {
    "name": "cp-1",
    "address": "10.0.0.11",
    "ssh_port": 22,
    "ssh_user": "root",
    "role": "control-plane",
    "labels": {},
    "taints": [],
}

BAD_NODES = [
    ("name", "CP_1", "DNS-1123"),
    ("name", "existing", "already exists"),
    ("address", "10.0.0.999", "IP"),
    ("address", "10.0.0.5", "already used"),
    ("address", "10.244.3.4", "pod subnet"),
    ("address", "10.96.0.20", "service subnet"),
    ("ssh_port", 0, "out of range"),
    ("ssh_port", 70000, "out of range"),
    ("ssh_user", "Root User", "login name"),
    ("role", "master", "valid choice"),
    ("role", "etcd", "needs a cluster with external etcd"),  # the fixture cluster is stacked
    ("labels", {"bad key!": "x"}, "label key"),
    ("labels", {"zone": "not valid value!"}, "label value"),
    ("labels", {"node-role.kubernetes.io/worker": ""}, "kubelet refuses to start"),
    ("taints", ["gpu=true"], "key=value:Effect"),
    ("taints", ["gpu=true:Never"], "effect must be one of"),
    ("ssh_private_key", "hello", "not a private key"),
    ("host_key_fingerprint", "MD5:aa:bb", "SHA-256 fingerprint"),
]


@pytest.fixture
def existing_node(cluster: Cluster) -> Node:
    return make_node(cluster, "worker", name="existing", address="10.0.0.5")


def _counts() -> tuple[int, int, int]:
    return Cluster.objects.count(), Node.objects.count(), AuditEvent.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), BAD_CLUSTERS)
def test_api_rejects_bad_cluster_input(
    api_client: Callable[[str], Any], cluster: Cluster, field: str, value: Any, message: str
) -> None:
    before = _counts()
    response = api_client("operator").post(
        "/api/v1/clusters/", {**GOOD_CLUSTER, field: value}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert message in " ".join(body["errors"][field]), body
    assert field in body["detail"]
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), BAD_CLUSTERS)
def test_form_reshows_bad_cluster_input(
    web_client: Callable[[str], Any], cluster: Cluster, field: str, value: Any, message: str
) -> None:
    client = web_client("operator")
    before = _counts()
    data = {**GOOD_CLUSTER, field: value}
    data["extra_sans"] = "\n".join(data["extra_sans"])
    response = client.post("/clusters/new/", data)
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    assert f'id="{field}-error"' in response.content.decode()
    assert _counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "message"), BAD_NODES)
def test_api_rejects_bad_node_input(
    api_client: Callable[[str], Any],
    cluster: Cluster,
    existing_node: Node,
    field: str,
    value: Any,
    message: str,
) -> None:
    before = _counts()
    payload = {**GOOD_NODE, "cluster": cluster.pk, field: value}
    response = api_client("operator").post("/api/v1/nodes/", payload, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert _counts() == before


def _form_value(value: Any) -> Any:
    if isinstance(value, dict):
        return "\n".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(value)
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"), [case for case in BAD_NODES if case[0] != "host_key_fingerprint"]
)
def test_form_reshows_bad_node_input(
    web_client: Callable[[str], Any],
    cluster: Cluster,
    existing_node: Node,
    field: str,
    value: Any,
    message: str,
) -> None:
    client = web_client("operator")
    before = _counts()
    data = {key: _form_value(item) for key, item in {**GOOD_NODE, field: value}.items()}
    response = client.post(f"/clusters/{cluster.pk}/nodes/new/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message in " ".join(form.errors[field])
    assert _counts() == before


@pytest.mark.django_db
def test_it_rejects_a_wrong_passphrase_and_never_echoes_the_key(
    api_client: Callable[[str], Any],
    web_client: Callable[[str], Any],
    cluster: Cluster,
    encrypted_rsa_key: tuple[str, str],
) -> None:
    key, _ = encrypted_rsa_key
    payload = {**GOOD_NODE, "cluster": cluster.pk, "ssh_private_key": key}
    client = api_client("operator")
    wrong = client.post("/api/v1/nodes/", {**payload, "ssh_key_passphrase": "nope"}, format="json")
    missing = client.post("/api/v1/nodes/", payload, format="json")
    assert wrong.status_code == missing.status_code == 400
    assert "wrong passphrase" in wrong.json()["errors"]["ssh_key_passphrase"][0]
    assert "give its passphrase" in missing.json()["errors"]["ssh_key_passphrase"][0]
    form = web_client("operator").post(
        f"/clusters/{cluster.pk}/nodes/new/",
        {
            **GOOD_NODE,
            "labels": "",
            "taints": "",
            "ssh_private_key": key,
            "ssh_key_passphrase": "x",
        },
    )
    assert "wrong passphrase" in form.content.decode()
    body_line = key.splitlines()[1]
    assert body_line not in form.content.decode()
    assert body_line not in wrong.content.decode()
    assert Node.objects.count() == 0


@pytest.mark.django_db
def test_an_update_with_bad_input_leaves_the_row_unchanged(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    response = api_client("operator").patch(
        f"/api/v1/clusters/{cluster.pk}/", {"service_subnet": "10.96.0.1/12"}, format="json"
    )
    assert response.status_code == 400
    cluster.refresh_from_db()
    assert cluster.service_subnet == "10.96.0.0/12"


@pytest.mark.django_db
def test_good_input_is_saved_with_normalised_values(
    api_client: Callable[[str], Any], ed25519_key: str
) -> None:
    client = api_client("operator")
    created = client.post(
        "/api/v1/clusters/",
        {**GOOD_CLUSTER, "kubernetes_version": "1.31.2", "extra_sans": ["LB.Example.com"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["kubernetes_version"] == "v1.31.2"
    assert created.json()["extra_sans"] == ["lb.example.com"]
    node = client.post(
        "/api/v1/nodes/",
        {**GOOD_NODE, "cluster": created.json()["id"], "ssh_private_key": ed25519_key},
        format="json",
    )
    assert node.status_code == 201, node.content
    body = node.json()
    assert body["has_credential"] is True and body["credential_kind"] == "private key"
    assert "ssh_private_key" not in body and "ssh_password" not in body


@pytest.mark.django_db
def test_pinning_a_host_key_fingerprint_records_who_approved_it(
    api_client: Callable[[str], Any], cluster: Cluster, personas: dict[str, Any]
) -> None:
    import base64
    import hashlib

    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(b"host key").digest()).decode()[:43]
    node = make_node(cluster, "worker", name="w1", address="10.0.0.21")
    response = api_client("operator").patch(
        f"/api/v1/nodes/{node.pk}/", {"host_key_fingerprint": fingerprint}, format="json"
    )
    assert response.status_code == 200, response.content
    node.refresh_from_db()
    assert node.host_key_fingerprint == fingerprint
    assert node.host_key_approved_by == personas["operator"]
    assert node.host_key_approved_at is not None
    event = AuditEvent.objects.get(action="node.host_key_pin")
    assert event.details == {"fingerprint": fingerprint}


@pytest.mark.django_db
def test_a_downgrade_is_refused_naming_the_version_field(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(kubernetes_version="v1.32.4")
    api = api_client("operator")
    response = api.patch(
        f"/api/v1/clusters/{cluster.pk}/", {"kubernetes_version": "1.29.0"}, format="json"
    )
    assert response.status_code == 400, response.content
    (message,) = response.json()["errors"]["kubernetes_version"]
    assert message == (
        "v1.29.0 is older than v1.32.4, the cluster's version: downgrades are refused "
        "(kubeadm only upgrades a cluster)"
    )
    # An older patch release of the same minor is a downgrade too.
    older_patch = api.patch(
        f"/api/v1/clusters/{cluster.pk}/", {"kubernetes_version": "v1.32.3"}, format="json"
    )
    assert "kubernetes_version" in older_patch.json()["errors"]
    data = {**GOOD_CLUSTER, "name": cluster.name, "kubernetes_version": "v1.29.0"}
    data["control_plane_endpoint"] = cluster.control_plane_endpoint
    data["extra_sans"] = ""
    page = web_client("operator").post(f"/clusters/{cluster.pk}/edit/", data)
    assert page.status_code == 200
    assert "downgrades are refused" in " ".join(page.context["form"].errors["kubernetes_version"])
    cluster.refresh_from_db()
    assert cluster.kubernetes_version == "v1.32.4"
    # Newer patch releases and minors are upgrades, and are stored.
    for newer in ("v1.32.9", "v1.33.0"):
        ok = api.patch(
            f"/api/v1/clusters/{cluster.pk}/", {"kubernetes_version": newer}, format="json"
        )
        assert ok.status_code == 200, ok.content
        cluster.refresh_from_db()
        assert cluster.kubernetes_version == newer


@pytest.mark.django_db
def test_etcd_nodes_belong_to_clusters_with_external_etcd(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    external = api.post(
        "/api/v1/clusters/",
        {**GOOD_CLUSTER, "name": "ext", "etcd_topology": "external"},
        format="json",
    )
    assert external.status_code == 201, external.content
    member = api.post(
        "/api/v1/nodes/",
        {**GOOD_NODE, "cluster": external.json()["id"], "name": "etcd-1", "role": "etcd"},
        format="json",
    )
    assert member.status_code == 201, member.content
    # Stacking etcd on the control plane would leave that member out: refused by name.
    stacked = api.patch(
        f"/api/v1/clusters/{external.json()['id']}/", {"etcd_topology": "stacked"}, format="json"
    )
    assert stacked.status_code == 400, stacked.content
    assert "etcd-1" in stacked.json()["errors"]["etcd_topology"][0]
    assert Cluster.objects.get(name="ext").etcd_topology == "external"


@pytest.mark.django_db
def test_operators_set_the_backup_schedule_and_retention_on_the_page_and_the_api(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any], cluster: Cluster
) -> None:
    page = web_client("operator")
    form = page.get(f"/clusters/{cluster.pk}/edit/").content.decode()
    assert 'name="etcd_backup_interval_hours"' in form and 'name="etcd_snapshot_retention"' in form
    data = {**GOOD_CLUSTER, "name": cluster.name, "extra_sans": ""}
    schedule = {"etcd_backup_interval_hours": 6, "etcd_snapshot_retention": 14}
    saved = page.post(f"/clusters/{cluster.pk}/edit/", {**data, **schedule})
    assert saved.status_code == 302, saved.content
    cluster.refresh_from_db()
    assert (cluster.etcd_backup_interval_hours, cluster.etcd_snapshot_retention) == (6, 14)
    # A post of an older page without them keeps them.
    assert page.post(f"/clusters/{cluster.pk}/edit/", data).status_code == 302
    cluster.refresh_from_db()
    assert (cluster.etcd_backup_interval_hours, cluster.etcd_snapshot_retention) == (6, 14)

    client = api_client("operator")
    answered = client.get(f"/api/v1/clusters/{cluster.pk}/").json()
    assert answered["etcd_backup_interval_hours"] == 6 and answered["etcd_snapshot_retention"] == 14
    patched = client.patch(f"/api/v1/clusters/{cluster.pk}/",
                           {"etcd_backup_interval_hours": 0, "etcd_snapshot_retention": 3},
                           format="json")  # fmt: skip
    assert patched.status_code == 200, patched.content
    cluster.refresh_from_db()
    assert (cluster.etcd_backup_interval_hours, cluster.etcd_snapshot_retention) == (0, 3)
    refused = client.patch(f"/api/v1/clusters/{cluster.pk}/", {"etcd_snapshot_retention": "x"},
                           format="json")  # fmt: skip
    assert refused.status_code == 400 and "etcd_snapshot_retention" in refused.json()["errors"]
    viewer = api_client("viewer").patch(
        f"/api/v1/clusters/{cluster.pk}/", {"etcd_snapshot_retention": 9}, format="json"
    )
    assert viewer.status_code == 403
