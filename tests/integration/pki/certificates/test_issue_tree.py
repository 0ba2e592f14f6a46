"""Issuing a cluster's tree through the API, downloading node bundles and user kubeconfigs.

The stacked cluster (3 control-plane nodes behind a load-balancer name, RSA-2048 as kubeadm's
default) and the external-etcd cluster are issued once for the module; openssl judges the results.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterpanel.models import AuditEvent
from nodes.models import Cluster, Node
from pki.models import Certificate, CertificateKind
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.dbdump import database_dump
from tests.factories import make_cluster, make_nodes
from tests.integration.pki.certificates.conftest import (
    committed_cluster,
    openssl,
    row_counts,
    untar,
)

CONTROL_PLANES = [("cp-1", "10.0.0.11", "control-plane"), ("cp-2", "10.0.0.12", "control-plane")]
CONTROL_PLANES.append(("cp-3", "10.0.0.13", "control-plane"))
WORKER = ("w-1", "10.0.1.1", "worker")
ETCD = [(f"etcd-{i}", f"10.0.2.{i}", "etcd") for i in (1, 2, 3)]
SHARED = [
    "apiserver-kubelet-client",
    "front-proxy-client",
    "apiserver-etcd-client",
    "etcd/healthcheck-client",
]
PER_CONTROL_PLANE = [
    "apiserver",
    "etcd/server",
    "etcd/peer",
    "controller-manager.conf",
    "scheduler.conf",
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
]
CONTROL_PLANE_BUNDLE = {
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
    "pki/sa.key",
    "pki/sa.pub",
    "pki/apiserver.crt",
    "pki/apiserver.key",
    "pki/apiserver-kubelet-client.crt",
    "pki/apiserver-kubelet-client.key",
    "pki/apiserver-etcd-client.crt",
    "pki/apiserver-etcd-client.key",
    "pki/front-proxy-client.crt",
    "pki/front-proxy-client.key",
    "pki/etcd/server.crt",
    "pki/etcd/server.key",
    "pki/etcd/peer.crt",
    "pki/etcd/peer.key",
    "pki/etcd/healthcheck-client.crt",
    "pki/etcd/healthcheck-client.key",
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
    "kubelet.conf",
    # Audit logging is on by default, and the rendered ClusterConfiguration mounts this file.
    "audit-policy.yaml",
}
SHARED_CONTROL_PLANE_FILES = [
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
    "pki/sa.key",
    "pki/sa.pub",
]


@pytest.fixture(scope="module")
def stacked(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[Cluster, Any, Any]]:
    with committed_cluster(
        django_db_blocker,
        "stacked",
        [*CONTROL_PLANES, WORKER],
        control_plane_endpoint="lb.example.internal:6443",
        extra_sans=["api.example.com", "10.0.0.100"],
    ) as (cluster, client):
        yield cluster, client, certificate_services.issue_missing(cluster, actor=SETUP)


@pytest.fixture(scope="module")
def external(django_db_setup: Any, django_db_blocker: Any) -> Iterator[tuple[Cluster, Any, Any]]:
    with committed_cluster(
        django_db_blocker,
        "external",
        [*CONTROL_PLANES, WORKER, *ETCD],
        control_plane_endpoint="10.0.0.100:6443",
        etcd_topology="external",
        key_algorithm="ECDSA-P256",
    ) as (cluster, client):
        yield cluster, client, certificate_services.issue_missing(cluster, actor=SETUP)


def _tree(cluster: Cluster) -> set[tuple[str, str]]:
    return {
        (c.name, c.node_name)
        for c in Certificate.objects.tree().filter(cluster=cluster, kind=CertificateKind.KUBEADM)
    }


def _expected_stacked_tree() -> set[tuple[str, str]]:
    expected = {(name, "") for name in SHARED}
    expected |= {(name, cp) for cp, _, _ in CONTROL_PLANES for name in PER_CONTROL_PLANE}
    expected.add(("kubelet.conf", "w-1"))
    return expected


@pytest.mark.django_db
def test_issuing_through_the_api_creates_kubeadms_whole_tree(api_client) -> None:
    cluster = make_cluster(
        "api-issued",
        control_plane_endpoint="lb.example.internal:6443",
        extra_sans=["api.example.com"],
        key_algorithm="ECDSA-P256",
    )
    make_nodes(cluster, [*CONTROL_PLANES, WORKER])
    response = api_client("operator").post(f"/api/v1/clusters/{cluster.pk}/certificates/issue/")
    assert response.status_code == 201, response.content
    assert _tree(cluster) == _expected_stacked_tree()
    assert len(response.json()["created"]) == len(_expected_stacked_tree())
    event = AuditEvent.objects.get(action="pki.issue")
    assert event.actor_name == "operator" and "PRIVATE" not in str(event.details)
    again = api_client("operator").post(f"/api/v1/clusters/{cluster.pk}/certificates/issue/")
    assert again.status_code == 200 and again.json()["created"] == []


@pytest.mark.django_db
def test_the_rsa_tree_of_a_stacked_cluster_is_kubeadms_whole_tree(stacked) -> None:
    cluster, _, result = stacked
    assert _tree(cluster) == _expected_stacked_tree()
    assert len(result.created) == len(_expected_stacked_tree())
    cas = {ca.name: ca.common_name for ca in cluster.certificate_authorities.all()}
    assert cas == {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}
    assert cluster.service_account_keys.count() == 1
    apiserver = Certificate.objects.get(cluster=cluster, name="apiserver", node_name="cp-2")
    assert apiserver.dns_names == sorted(
        [
            "api.example.com",
            "cp-2",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "lb.example.internal",
        ]
    )
    assert apiserver.ip_addresses == ["10.96.0.1", "10.0.0.12", "10.0.0.100"]
    assert apiserver.certificate.public_key().key_size == 2048


@pytest.mark.django_db
def test_issuing_again_creates_nothing(stacked) -> None:
    cluster, client, _ = stacked
    before = row_counts()
    response = client.post(f"/api/v1/clusters/{cluster.pk}/certificates/issue/")
    assert response.status_code == 200
    assert response.json()["created"] == []
    assert row_counts() == before


@pytest.mark.django_db
def test_external_etcd_gets_its_own_etcd_certificates(external) -> None:
    cluster, _, result = external
    assert result.created
    tree = _tree(cluster)
    for member, _, _ in ETCD:
        assert ("etcd/server", member) in tree and ("etcd/peer", member) in tree
    for cp, _, _ in CONTROL_PLANES:
        assert ("apiserver", cp) in tree
        assert ("etcd/server", cp) not in tree
    assert ("apiserver-etcd-client", "") in tree
    peer = Certificate.objects.get(cluster=cluster, name="etcd/peer", node_name="etcd-2")
    assert peer.dns_names == ["etcd-2", "localhost"]
    assert peer.ip_addresses == ["10.0.2.2", "127.0.0.1", "::1"]


def _bundle(client: Any, cluster: Cluster, node_name: str) -> bytes:
    node = Node.objects.get(cluster=cluster, name=node_name)
    response = client.get(f"/api/v1/clusters/{cluster.pk}/bundle/", {"node": node.pk})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/gzip"
    return response.content


@pytest.mark.django_db
def test_control_plane_bundles_have_kubeadms_layout_and_verify_with_openssl(
    stacked, tmp_path: Path
) -> None:
    cluster, client, _ = stacked
    shared: dict[str, set[bytes]] = {}
    for cp, _, _ in CONTROL_PLANES:
        root = tmp_path / cp
        members = untar(_bundle(client, cluster, cp), root)
        files = {name for name, m in members.items() if m.isfile()}
        assert files == CONTROL_PLANE_BUNDLE
        for name in files:
            secret = name.endswith((".key", ".conf"))
            assert members[name].mode == (0o600 if secret else 0o644), name
        for name in SHARED_CONTROL_PLANE_FILES:
            shared.setdefault(name, set()).add((root / name).read_bytes())
        pki = root / "pki"
        for crt in ("apiserver", "apiserver-kubelet-client"):
            openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / f"{crt}.crt"))
        openssl(
            "verify",
            "-CAfile",
            str(pki / "front-proxy-ca.crt"),
            str(pki / "front-proxy-client.crt"),
        )
        for crt in ("server", "peer", "healthcheck-client"):
            openssl("verify", "-CAfile", str(pki / "etcd/ca.crt"), str(pki / f"etcd/{crt}.crt"))
        # Each key belongs to its certificate.
        for crt in ("apiserver", "etcd/peer"):
            cert_pub = openssl("x509", "-in", str(pki / f"{crt}.crt"), "-noout", "-pubkey").stdout
            key_pub = openssl("pkey", "-in", str(pki / f"{crt}.key"), "-pubout").stdout
            assert cert_pub == key_pub
        # The kubeconfigs embed client certificates signed by the same CA.
        admin = yaml.safe_load((root / "admin.conf").read_text())
        client_pem = base64.b64decode(admin["users"][0]["user"]["client-certificate-data"])
        (root / "admin.crt").write_bytes(client_pem)
        openssl("verify", "-CAfile", str(pki / "ca.crt"), str(root / "admin.crt"))
        assert admin["clusters"][0]["cluster"]["server"] == "https://lb.example.internal:6443"
    # Every control-plane node holds the same CAs and service-account keys, byte for byte.
    assert all(len(contents) == 1 for contents in shared.values()), shared.keys()


@pytest.mark.django_db
def test_worker_bundle_holds_only_the_ca_certificate_and_kubelet_conf(stacked, tmp_path) -> None:
    cluster, client, _ = stacked
    members = untar(_bundle(client, cluster, "w-1"), tmp_path)
    assert {n for n, m in members.items() if m.isfile()} == {"pki/ca.crt", "kubelet.conf"}


@pytest.mark.django_db
def test_control_plane_bundles_carry_the_audit_policy_the_config_mounts(stacked, tmp_path) -> None:
    from pki.models.kubeadm_settings import ClusterKubeadmSettings
    from pki.services import bootstrap as bootstrap_services

    cluster, client, _ = stacked
    members = untar(_bundle(client, cluster, "cp-1"), tmp_path / "on")
    assert members["audit-policy.yaml"].mode == 0o644
    policy = (tmp_path / "on" / "audit-policy.yaml").read_text()
    assert policy == bootstrap_services.audit_policy_text(cluster)
    assert yaml.safe_load(policy)["kind"] == "Policy"
    config = yaml.safe_load(bootstrap_services.cluster_configuration_preview(cluster))
    args = {arg["name"]: arg["value"] for arg in config["apiServer"]["extraArgs"]}
    assert args["audit-policy-file"] == "/etc/kubernetes/audit-policy.yaml"
    # With audit logging off, neither the flag nor the file.
    ClusterKubeadmSettings.objects.update_or_create(
        cluster=cluster, defaults={"audit_enabled": False}
    )
    members = untar(_bundle(client, cluster, "cp-1"), tmp_path / "off")
    assert "audit-policy.yaml" not in members
    config = yaml.safe_load(bootstrap_services.cluster_configuration_preview(cluster))
    assert "audit-policy-file" not in str(config)


@pytest.mark.django_db
def test_bundle_downloads_are_audited_and_operators_get_only_workers(
    stacked, api_client, tmp_path
) -> None:
    cluster, _, _ = stacked
    url = f"/api/v1/clusters/{cluster.pk}/bundle/"
    control_plane = Node.objects.get(cluster=cluster, name="cp-1")
    worker = Node.objects.get(cluster=cluster, name="w-1")
    before = AuditEvent.objects.filter(action="pki.bundle.download").count()
    response = api_client("operator").get(url, {"node": worker.pk})
    assert response.status_code == 200
    assert "kubelet.conf" in untar(response.content, tmp_path / "w-1")
    event = AuditEvent.objects.filter(action="pki.bundle.download").latest("pk")
    assert AuditEvent.objects.filter(action="pki.bundle.download").count() == before + 1
    assert event.actor_name == "operator" and event.details["node"] == "w-1"
    assert "PRIVATE" not in str(event.details)
    # A control-plane bundle holds the CA keys: refused to operators, with the reason.
    refused = api_client("operator").get(url, {"node": control_plane.pk})
    assert refused.status_code == 403
    assert "CA keys" in refused.json()["detail"]
    assert AuditEvent.objects.filter(action="pki.bundle.download").count() == before + 1
    # Admins get it, super-admin.conf included.
    admin = api_client("admin").get(url, {"node": control_plane.pk})
    assert admin.status_code == 200
    members = untar(admin.content, tmp_path / "cp-1")
    assert "super-admin.conf" in members and "pki/ca.key" in members
    event = AuditEvent.objects.filter(action="pki.bundle.download").latest("pk")
    assert event.actor_name == "admin" and event.details["super_admin"] is True
    # Viewers may not download keys.
    viewer = api_client("viewer").get(url, {"node": worker.pk})
    assert viewer.status_code == 403


@pytest.mark.django_db
def test_a_user_kubeconfig_carries_the_users_own_certificate(stacked, api_client, tmp_path) -> None:
    cluster, _, _ = stacked
    url = f"/api/v1/clusters/{cluster.pk}/kubeconfigs/"
    body = {"username": "alice", "groups": ["dev", "ops"], "validity": 30}
    response = api_client("operator").post(url, body, format="json")
    assert response.status_code == 201, response.content
    config = yaml.safe_load(response.content)
    assert config["current-context"] == "alice@kubernetes"
    user = config["users"][0]["user"]
    (tmp_path / "alice.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp_path / "ca.crt").write_bytes(
        base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    openssl(
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        str(tmp_path / "ca.crt"),
        str(tmp_path / "alice.crt"),
    )
    subject = openssl(
        "x509", "-in", str(tmp_path / "alice.crt"), "-noout", "-subject", "-nameopt", "RFC2253"
    ).stdout
    # Both groups sit in one multi-valued RDN, as Go writes pkix.Name organizations.
    cn, organizations = subject.strip().removeprefix("subject=").split(",")
    assert cn == "CN=alice"
    assert sorted(organizations.split("+")) == ["O=dev", "O=ops"]
    event = AuditEvent.objects.filter(action="pki.kubeconfig.issue").latest("pk")
    assert event.details["username"] == "alice"
    assert "PRIVATE" not in str(event.details)


@pytest.mark.django_db
def test_system_masters_is_never_handed_to_a_user(stacked, api_client) -> None:
    cluster, _, _ = stacked
    before = row_counts()
    response = api_client("admin").post(
        f"/api/v1/clusters/{cluster.pk}/kubeconfigs/",
        {"username": "mallory", "groups": ["system:masters"]},
        format="json",
    )
    assert response.status_code == 400
    assert "groups" in response.json()["errors"]
    assert row_counts() == before


@pytest.mark.django_db
def test_no_other_route_answers_private_keys(stacked, api_client) -> None:
    cluster, _, _ = stacked
    client = api_client("admin")
    cert = Certificate.objects.filter(cluster=cluster, name="apiserver").first()
    for url in (
        "/api/v1/certificates/",
        f"/api/v1/certificates/?cluster={cluster.pk}",
        f"/api/v1/certificates/{cert.pk}/",
        f"/api/v1/certificates/{cert.pk}/pem/",
        f"/api/v1/certificates/{cert.pk}/inspect/",
        f"/api/v1/clusters/{cluster.pk}/authorities/",
        f"/api/v1/clusters/{cluster.pk}/certificates/coverage/",
        f"/api/v1/clusters/{cluster.pk}/certificates/expiration/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"PRIVATE KEY" not in response.content, url
    assert client.get(f"/api/v1/certificates/{cert.pk}/pem/").content.startswith(
        b"-----BEGIN CERTIFICATE-----"
    )


@pytest.mark.django_db
def test_certificates_list_filters_by_expiry_and_sorts_by_it(stacked, api_client) -> None:
    cluster, _, _ = stacked
    client = api_client("viewer")
    listed = client.get("/api/v1/certificates/", {"cluster": cluster.pk}).json()
    assert listed["count"] == len(_tree(cluster))
    soon = client.get(
        "/api/v1/certificates/", {"cluster": cluster.pk, "expiring_within_days": 30}
    ).json()
    assert soon["count"] == 0
    year = client.get(
        "/api/v1/certificates/", {"cluster": cluster.pk, "expiring_within_days": 400}
    ).json()["results"]
    assert [r["not_after"] for r in year] == sorted(r["not_after"] for r in year)
    assert {r["band"] for r in year} == {"ok"}
    bad = client.get("/api/v1/certificates/", {"expiring_within_days": "soon"})
    assert bad.status_code == 400 and "expiring_within_days" in bad.json()["errors"]


@pytest.mark.django_db
def test_expiration_table_has_kubeadms_columns(stacked, api_client) -> None:
    cluster, _, _ = stacked
    client = api_client("viewer")
    text = client.get(
        f"/api/v1/clusters/{cluster.pk}/certificates/expiration/", {"output": "text"}
    ).content.decode()
    assert "CERTIFICATE                EXPIRES" in text
    assert "CERTIFICATE AUTHORITY   EXPIRES" in text
    data = client.get(f"/api/v1/clusters/{cluster.pk}/certificates/expiration/").json()
    assert [t["node"] for t in data["nodes"]] == ["cp-1", "cp-2", "cp-3"]
    names = [r["name"] for r in data["nodes"][0]["certificates"]]
    assert names == sorted(names) and "etcd-peer" in names and "super-admin.conf" in names
    assert all(r["residual_time"] == "364d" for r in data["nodes"][0]["certificates"])


@pytest.mark.django_db
def test_the_database_file_holds_no_private_key_in_plain_text(stacked) -> None:
    cluster, _, _ = stacked
    ca = cluster.certificate_authorities.get(name="ca")
    key_line = ca.private_key_pem.splitlines()[1].encode()
    dump = database_dump()
    assert ca.fingerprint_sha256.encode() in dump  # the tree is in the dump
    assert b"PRIVATE KEY" not in dump
    assert key_line not in dump
