"""Coverage, reissue, renewal and SAN checks when the topology changes.

ECDSA P-256 keeps these per-test trees cheap; the RSA tree is covered in test_issue_tree.
"""

from __future__ import annotations

from typing import Any

import pytest

from nodes.models import Cluster, Node
from pki.models import Certificate, CertificateStatus
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node
from tests.integration.pki.certificates.conftest import row_counts


@pytest.fixture
def issued(db: Any) -> Cluster:
    cluster = make_cluster(
        "topo", control_plane_endpoint="lb.example.internal:6443", key_algorithm="ECDSA-P256"
    )
    for _ in range(3):
        make_node(cluster)  # cp-1, cp-2, cp-3 at 10.0.0.11 to 10.0.0.13
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def _ca_fingerprints(cluster: Cluster) -> dict[str, str]:
    return {ca.name: ca.fingerprint_sha256 for ca in cluster.certificate_authorities.all()}


def _sa(cluster: Cluster) -> str:
    return cluster.service_account_keys.get(status="active").public_key_pem


def test_an_added_cert_san_makes_coverage_report_every_apiserver(issued, api_client) -> None:
    cluster = issued
    cluster.extra_sans = ["api.example.com"]
    cluster.save()
    report = api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/certificates/coverage/")
    assert report.status_code == 200
    stale = report.json()["stale"]
    assert {(s["name"], s["node"]) for s in stale} == {("apiserver", f"cp-{i}") for i in (1, 2, 3)}
    assert all(s["missing_sans"] == ["api.example.com"] for s in stale)
    assert report.json()["ok"] is False


def test_reissue_fixes_coverage_and_keeps_cas_and_sa_keys(issued, api_client) -> None:
    cluster = issued
    cas, sa = _ca_fingerprints(cluster), _sa(cluster)
    old = set(
        Certificate.objects.filter(cluster=cluster, name="apiserver").values_list("pk", flat=True)
    )
    cluster.control_plane_endpoint = "10.0.0.100:6443"  # a VIP instead of the LB name
    cluster.extra_sans = ["api.example.com"]
    cluster.save()
    response = api_client("operator").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/reissue/", {}, format="json"
    )
    assert response.status_code == 200, response.content
    assert len(response.json()["reissued"]) == 3
    assert certificate_services.coverage(cluster).ok
    for pk in old:
        row = Certificate.objects.get(pk=pk)
        assert row.status == CertificateStatus.SUPERSEDED and row.superseded_by is not None
    assert _ca_fingerprints(cluster) == cas and _sa(cluster) == sa
    new = Certificate.objects.tree().get(cluster=cluster, name="apiserver", node_name="cp-1")
    assert "10.0.0.100" in new.ip_addresses and "api.example.com" in new.dns_names
    check = certificate_services.check_san(new, "10.0.0.100")
    assert check.covered


def test_an_added_control_plane_node_gets_its_files_with_the_same_cas(issued, api_client) -> None:
    cluster = issued
    cas, sa = _ca_fingerprints(cluster), _sa(cluster)
    before = certificate_services.shared_control_plane_files(cluster)
    make_node(cluster, name="cp-4", address="10.0.0.14")
    missing = certificate_services.coverage(cluster).missing
    assert {(s.name, s.node) for s in missing} >= {("apiserver", "cp-4"), ("etcd/peer", "cp-4")}
    response = api_client("operator").post(f"/api/v1/clusters/{cluster.pk}/certificates/issue/")
    assert response.status_code == 201
    assert {c["node_name"] for c in response.json()["created"]} == {"cp-4"}
    assert _ca_fingerprints(cluster) == cas and _sa(cluster) == sa
    assert certificate_services.shared_control_plane_files(cluster) == before
    assert certificate_services.coverage(cluster).ok


def test_renewal_supersedes_with_new_serials_and_keys_and_leaves_cas(issued, api_client) -> None:
    cluster = issued
    cas = _ca_fingerprints(cluster)
    old = {c.pk: c for c in Certificate.objects.tree().filter(cluster=cluster)}
    response = api_client("operator").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/renew/", {}, format="json"
    )
    assert response.status_code == 200, response.content
    renewed = response.json()["renewed"]
    assert len(renewed) == len(old)
    for row in old.values():
        row.refresh_from_db()
        assert row.status == CertificateStatus.SUPERSEDED
        successor = row.superseded_by
        assert successor.serial != row.serial
        assert successor.spki_sha256 != row.spki_sha256  # a new key by default
        assert successor.dns_names == row.dns_names and successor.common_name == row.common_name
    assert _ca_fingerprints(cluster) == cas


def test_renewal_can_keep_the_key_of_chosen_certificates(issued, api_client) -> None:
    cluster = issued
    chosen = Certificate.objects.tree().get(cluster=cluster, name="apiserver", node_name="cp-2")
    response = api_client("operator").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/renew/",
        {"certificates": [chosen.pk], "reuse_key": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    (renewed,) = response.json()["renewed"]
    assert renewed["spki_sha256"] == chosen.spki_sha256
    assert renewed["serial"] != chosen.serial
    assert Certificate.objects.tree().filter(cluster=cluster).count() == len(
        certificate_services.active_tree(cluster)
    )


def test_renewal_beyond_the_ca_expiry_is_refused_and_writes_nothing(issued, api_client) -> None:
    before = row_counts()
    response = api_client("operator").post(
        f"/api/v1/clusters/{issued.pk}/certificates/renew/",
        {"validity_days": 36500},
        format="json",
    )
    assert response.status_code == 400
    assert "validity_days" in response.json()["errors"]
    assert row_counts() == before


def test_renewal_leaves_user_kubeconfig_certificates_alone(issued, api_client) -> None:
    """Like kubeadm certs renew: only the tree. Two kubeconfigs for one user stay valid."""
    client = api_client("operator")
    url = f"/api/v1/clusters/{issued.pk}/kubeconfigs/"
    for _ in range(2):
        issued_kubeconfig = client.post(
            url, {"username": "alice", "groups": ["dev"]}, format="json"
        )
        assert issued_kubeconfig.status_code == 201, issued_kubeconfig.content
    users = set(
        Certificate.objects.filter(cluster=issued, kind="user").values_list("pk", flat=True)
    )
    assert len(users) == 2
    renew = f"/api/v1/clusters/{issued.pk}/certificates/renew/"
    response = client.post(renew, {}, format="json")
    assert response.status_code == 200, response.content
    still = Certificate.objects.filter(pk__in=users, status=CertificateStatus.ACTIVE).count()
    assert still == 2
    before = row_counts()
    refused = client.post(renew, {"certificates": sorted(users)}, format="json")
    assert refused.status_code == 400
    assert "new kubeconfig" in refused.json()["errors"]["certificates"][0]
    assert row_counts() == before


def test_san_check_answers_with_gos_message_and_the_san_to_add(issued, api_client) -> None:
    cluster = issued
    response = api_client("viewer").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/check-san/",
        {"host": "api.other.example"},
        format="json",
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    first = next(r for r in results if r["node"] == "cp-1")
    assert first["covered"] is False
    assert first["message"] == (
        "x509: certificate is valid for cp-1, kubernetes, kubernetes.default, "
        "kubernetes.default.svc, kubernetes.default.svc.cluster.local, lb.example.internal, "
        "not api.other.example"
    )
    assert first["san_to_add"] == "api.other.example"
    ok = api_client("viewer").post(
        f"/api/v1/clusters/{cluster.pk}/certificates/check-san/",
        {"host": "lb.example.internal", "certificate": first["certificate"]},
        format="json",
    )
    assert ok.json()["results"][0]["covered"] is True


def test_endpoint_check_covers_every_endpoint_of_a_freshly_issued_cluster(issued, api_client):
    response = api_client("viewer").get(f"/api/v1/clusters/{issued.pk}/certificates/endpoints/")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    hosts = {r["host"] for r in response.json()["results"]}
    assert {"lb.example.internal", "10.96.0.1", "10.0.0.11"} <= hosts


def test_an_invalid_extra_san_is_dropped_with_a_warning(issued, api_client) -> None:
    cluster = issued
    # Stored directly: the inventory form refuses it, but older rows may hold such a value.
    Cluster.objects.filter(pk=cluster.pk).update(extra_sans=["bad_name!"])
    response = api_client("operator").post(f"/api/v1/clusters/{cluster.pk}/certificates/issue/")
    assert response.status_code == 200
    (warning,) = response.json()["warnings"]
    assert "'bad_name!' was not added to the 'apiserver' SAN" in warning
    page = api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/certificates/coverage/")
    assert page.json()["warnings"] == [warning] and page.json()["ok"] is True


def test_a_node_with_certificates_cannot_be_renamed(issued, api_client) -> None:
    node = Node.objects.get(cluster=issued, name="cp-1")
    response = api_client("operator").patch(
        f"/api/v1/nodes/{node.pk}/", {"name": "cp-9"}, format="json"
    )
    assert response.status_code == 400
    assert "remove the node and add it again" in response.json()["errors"]["name"][0]
    node.refresh_from_db()
    assert node.name == "cp-1"
    # Renewal keeps each file's node name, so it never collides with itself.
    renewed = api_client("operator").post(
        f"/api/v1/clusters/{issued.pk}/certificates/renew/", {}, format="json"
    )
    assert renewed.status_code == 200
    names = set(
        Certificate.objects.tree().filter(cluster=issued).values_list("node_name", flat=True)
    )
    assert names == {"", "cp-1", "cp-2", "cp-3"}


def test_a_cluster_with_its_pki_and_tokens_can_be_deleted(issued, api_client) -> None:
    from clusterpanel.models import AuditEvent
    from pki.models import CertificateAuthority

    api = api_client("admin")
    token = api.post("/api/v1/tokens/", {"cluster": issued.pk}, format="json")
    assert token.status_code == 201
    api.post(f"/api/v1/clusters/{issued.pk}/kubeconfigs/", {"username": "bob"}, format="json")
    response = api.delete(f"/api/v1/clusters/{issued.pk}/")
    assert response.status_code == 204
    assert not Cluster.objects.filter(pk=issued.pk).exists()
    assert not CertificateAuthority.objects.filter(cluster_id=issued.pk).exists()
    assert not Certificate.objects.filter(cluster_id=issued.pk).exists()
    # The audit trail outlives the cluster, by name.
    assert AuditEvent.objects.filter(action="cluster.delete", cluster_name="topo").exists()
