"""The user kubeconfig form on the Certificates tab: a download judged by openssl, refusals shown
on the field they name, and one audit event per kubeconfig handed out."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.utils import timezone

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models import Certificate, CertificateKind
from pki.services import certificates as certificate_services
from tests.factories import make_cluster, make_node
from tests.integration.pki.certificates.conftest import openssl, row_counts


@pytest.fixture
def cluster_with_ca(db: Any) -> Cluster:
    cluster = make_cluster(
        "users", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_node(cluster)  # cp-1 at 10.0.0.11
    certificate_services.ensure_cluster_cas(cluster)
    return cluster


def _url(cluster: Cluster) -> str:
    return f"/clusters/{cluster.pk}/certificates/kubeconfig/"


def test_an_operator_downloads_a_kubeconfig_with_the_users_own_certificate(
    cluster_with_ca: Cluster, web_client: Any, tmp_path: Path
) -> None:
    response = web_client("operator").post(
        _url(cluster_with_ca), {"username": "alice", "groups": "dev, ops  dev", "validity": "30"}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="alice.conf"'
    assert response["Cache-Control"] == "no-store"
    config = yaml.safe_load(response.content)
    assert config["current-context"] == "alice@kubernetes"
    assert config["clusters"][0]["cluster"]["server"] == "https://lb.example.internal:6443"
    user = config["users"][0]["user"]
    (tmp_path / "alice.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp_path / "ca.crt").write_bytes(
        base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    subject = openssl("x509", "-in", "alice.crt", "-noout", "-subject", cwd=tmp_path).stdout
    # Duplicated groups once each, in one RDN as Go's crypto/x509 writes them.
    assert subject.strip() == "subject=O = dev + O = ops, CN = alice"
    verify = openssl(
        "verify", "-CAfile", "ca.crt", "-purpose", "sslclient", "alice.crt", cwd=tmp_path
    )
    assert verify.stdout.strip() == "alice.crt: OK"
    row = Certificate.objects.get(cluster=cluster_with_ca, kind=CertificateKind.USER)
    assert (row.common_name, row.organizations) == ("alice", ["dev", "ops"])
    assert abs(row.not_after - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(minutes=6)

    event = AuditEvent.objects.get(action="pki.kubeconfig.issue")
    assert event.actor_name == "operator"
    assert event.cluster_id == cluster_with_ca.pk
    assert event.object_id == str(row.pk)
    assert event.details == {
        "username": "alice",
        "groups": ["dev", "ops"],
        "serial": row.serial,
        "privileged": [],
    }
    assert "PRIVATE KEY" not in str(event.details)


def test_an_empty_validity_uses_the_clusters(cluster_with_ca: Cluster, web_client: Any) -> None:
    response = web_client("operator").post(_url(cluster_with_ca), {"username": "bob"})
    assert response.status_code == 200
    row = Certificate.objects.get(cluster=cluster_with_ca, common_name="bob")
    days = cluster_with_ca.certificate_validity_days
    assert abs(row.not_after - (timezone.now() + dt.timedelta(days=days))) < dt.timedelta(minutes=6)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": "alice smith"}, "username", "a user name is 1-48 characters"),
        ({"username": ""}, "username", "This field is required."),
        (
            {"username": "root", "groups": "dev,system:masters"},
            "groups",
            "system:masters bypasses RBAC and is never given to users",
        ),
        ({"username": "carol", "groups": "dev,bad;group"}, "groups", "is not a valid group name"),
        ({"username": "dave", "validity": "5000"}, "validity", "would end after the CA"),
        ({"username": "erin", "validity": "0"}, "validity", "greater than or equal to 1"),
    ],
    ids=["username", "no-username", "system-masters", "bad-group", "beyond-ca", "zero-days"],
)
def test_bad_input_is_shown_on_its_field_and_nothing_is_issued(
    cluster_with_ca: Cluster, web_client: Any, data: dict[str, str], field: str, message: str
) -> None:
    before = row_counts()
    response = web_client("operator").post(_url(cluster_with_ca), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'aria-current="page">Certificates' in html  # the tab again, with the form
    error = html.split(f'id="{field}-error">', 1)[1].split("</p>", 1)[0]
    assert message in error
    # What was typed is kept, to correct it.
    if data.get("groups"):
        assert f'value="{data["groups"]}"' in html
    assert row_counts() == before
    assert not AuditEvent.objects.filter(action="pki.kubeconfig.issue").exists()


def test_viewers_get_no_form_and_cannot_post(cluster_with_ca: Cluster, web_client: Any) -> None:
    page = web_client("viewer").get(f"/clusters/{cluster_with_ca.pk}/certificates/")
    assert b"kubeconfig-form" not in page.content
    operator_page = web_client("operator").get(f"/clusters/{cluster_with_ca.pk}/certificates/")
    assert b"kubeconfig-form" in operator_page.content
    assert web_client("viewer").post(_url(cluster_with_ca), {"username": "v"}).status_code == 403
    assert web_client("operator").get(_url(cluster_with_ca)).status_code == 405
    assert not Certificate.objects.filter(cluster=cluster_with_ca).exists()
