"""The Certificates tab, its htmx fragments, the CA page and the admin lists."""

from __future__ import annotations

from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models import Certificate
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node


@pytest.fixture
def issued(db: Any) -> Cluster:
    cluster = make_cluster(
        "pages", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_node(cluster)  # cp-1 at 10.0.0.11
    certificate_services.issue_missing(cluster, actor=SETUP)
    return cluster


def test_the_certificates_tab_lists_the_tree_with_expiry_bands(issued, web_client) -> None:
    response = web_client("viewer").get(f"/clusters/{issued.pk}/certificates/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="badge band-ok"') >= Certificate.objects.filter(cluster=issued).count()
    assert "kube-apiserver" in html and 'aria-current="page">Certificates' in html
    assert "Issue missing certificates" not in html  # viewers get no buttons
    assert "Every file of the current topology exists" in html
    operator = web_client("operator").get(f"/clusters/{issued.pk}/certificates/").content
    assert b"Issue missing certificates" in operator and b"Node bundles" in operator


def test_the_tab_filters_by_band(issued, web_client) -> None:
    client = web_client("viewer")
    expired = client.get(f"/clusters/{issued.pk}/certificates/", {"band": "expired"}).content
    assert b"No certificates match these filters." in expired
    assert b'class="empty-action">Clear the filters</a>' in expired


def test_a_new_san_shows_a_coverage_warning_and_the_reissue_button(issued, web_client) -> None:
    issued.extra_sans = ["api.example.com"]
    issued.save()
    html = web_client("operator").get(f"/clusters/{issued.pk}/certificates/").content.decode()
    assert "no longer cover the topology" in html and "<code>api.example.com</code>" in html
    response = web_client("operator").post(f"/clusters/{issued.pk}/certificates/reissue/")
    assert response.status_code == 302
    assert certificate_services.coverage(issued).ok


def test_the_inspector_and_san_check_answer_htmx_fragments(issued, web_client) -> None:
    client = web_client("viewer")
    cert = Certificate.objects.tree().get(cluster=issued, name="apiserver")
    panel = client.get(f"/certificates/{cert.pk}/inspect/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200
    assert b"<html" not in panel.content and cert.fingerprint_sha256.encode() in panel.content
    check = client.get(
        f"/clusters/{issued.pk}/certificates/check-san/",
        {"host": "10.9.9.9"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "x509: certificate is valid for 10.96.0.1, 10.0.0.11, not 10.9.9.9" in check
    assert "not covered" in check


def test_the_ca_page_shows_fingerprints_and_discovery_hashes(issued, web_client) -> None:
    html = web_client("viewer").get(f"/clusters/{issued.pk}/authorities/").content.decode()
    for ca in issued.certificate_authorities.all():
        assert ca.fingerprint_sha256 in html and ca.spki_sha256 in html
    assert "PRIVATE KEY" not in html


def test_the_admin_lists_days_left_filters_by_band_and_hides_keys(issued, web_client) -> None:
    client = web_client("admin")
    listing = client.get("/admin/pki/certificate/", {"band": "ok"})
    assert listing.status_code == 200
    assert b"Days left" in listing.content
    cert = Certificate.objects.tree().get(cluster=issued, name="apiserver")
    found = client.get("/admin/pki/certificate/", {"q": "10.0.0.11"})
    assert f"/admin/pki/certificate/{cert.pk}/change/".encode() in found.content
    detail = client.get(f"/admin/pki/certificate/{cert.pk}/change/")
    assert detail.status_code == 200 and b"PRIVATE KEY" not in detail.content
    ca = issued.certificate_authorities.get(name="ca")
    ca_page = client.get(f"/admin/pki/certificateauthority/{ca.pk}/change/")
    assert ca_page.status_code == 200 and b"PRIVATE KEY" not in ca_page.content
    expired = client.get("/admin/pki/certificate/", {"band": "expired"})
    assert f"/admin/pki/certificate/{cert.pk}/change/".encode() not in expired.content


def test_a_node_bundle_before_the_pki_exists_is_a_sentence_with_the_way_out(web_client) -> None:
    """The tab links its own bundle download, which never answers with the API's JSON: before
    the certificates exist the tab says so, and a followed link comes back with the reason."""
    cluster = make_cluster("fresh", key_algorithm="ECDSA-P256")
    make_node(cluster)  # cp-1: issuing needs a control plane
    node = make_node(cluster, "worker")  # an operator's download: a worker's bundle
    client = web_client("operator")
    tab = client.get(f"/clusters/{cluster.pk}/certificates/").content.decode()
    assert "No certificates are issued yet" in tab and "Issue missing certificates" in tab
    assert f"/clusters/{cluster.pk}/certificates/bundle/" not in tab
    assert "/api/v1/" not in tab.split('id="bundles"')[1]
    response = client.get(f"/clusters/{cluster.pk}/certificates/bundle/{node.pk}/", follow=True)
    assert response.redirect_chain[-1][0] == f"/clusters/{cluster.pk}/certificates/#bundles"
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "The bundle of w-1 holds all of its certificates" in text
    assert "Issue the missing certificates" in text
    assert not certificate_services.active_cas(cluster)  # nothing was generated on the way
    assert not AuditEvent.objects.filter(action="pki.bundle.download").exists()

    certificate_services.issue_missing(cluster, actor=SETUP)
    tab = client.get(f"/clusters/{cluster.pk}/certificates/").content.decode()
    link = f'href="/clusters/{cluster.pk}/certificates/bundle/{node.pk}/"'
    assert link in tab and "No certificates are issued yet" not in tab
    bundle = client.get(f"/clusters/{cluster.pk}/certificates/bundle/{node.pk}/")
    assert bundle.status_code == 200 and bundle["Content-Type"] == "application/gzip"
    assert bundle["Content-Disposition"].endswith('-w-1-etc-kubernetes.tar.gz"')
    assert AuditEvent.objects.filter(action="pki.bundle.download").count() == 1
    viewer = web_client("viewer").get(f"/clusters/{cluster.pk}/certificates/bundle/{node.pk}/")
    assert viewer.status_code == 403


def test_a_damaged_pem_is_explained_in_a_sentence(web_client, api_client) -> None:
    damaged = "-----BEGIN CERTIFICATE-----\nMIIB!!not*base64\n-----END CERTIFICATE-----\n"
    page = web_client("viewer").post("/pki/inspect/", {"pem": damaged}).content.decode()
    assert "the base64 text between the BEGIN and END lines is damaged" in page
    assert "cryptography.io" not in page and "InvalidData" not in page
    api = api_client("viewer").post("/api/v1/pki/inspect/", {"pem": damaged}, format="json")
    assert api.status_code == 400
    assert "cryptography.io" not in api.content.decode()
    assert "base64 text" in api.json()["errors"]["pem"][0]
