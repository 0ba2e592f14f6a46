"""Deleting a cluster destroys its CA keys, so the page asks for the cluster's name and the
server deletes nothing unless the typed name is exactly the cluster's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.services import certificates as certificate_services
from tests.factories import make_cluster, make_node

pytestmark = pytest.mark.django_db


@pytest.fixture
def doomed(db: Any) -> Cluster:
    cluster = make_cluster("doomed", key_algorithm="ECDSA-P256")
    make_node(cluster)
    make_node(cluster, "worker")
    certificate_services.ensure_cluster_cas(cluster)
    return cluster


@pytest.fixture
def admin(web_client: Callable[[str | None], Client]) -> Client:
    return web_client("admin")


def test_the_cluster_page_links_to_the_delete_page_instead_of_a_browser_prompt(
    admin, doomed
) -> None:
    html = admin.get(f"/clusters/{doomed.pk}/").content.decode()
    assert f'href="/clusters/{doomed.pk}/delete/"' in html
    assert "confirm(" not in html and "onsubmit" not in html


def test_the_delete_page_says_what_goes_and_asks_for_the_name(admin, doomed) -> None:
    response = admin.get(f"/clusters/{doomed.pk}/delete/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 nodes" in html and "3 certificate authorities" in html
    assert "private keys" in html
    assert 'name="confirm_name"' in html and "Type <code>doomed</code> to confirm" in html
    assert Cluster.objects.filter(pk=doomed.pk).exists()  # showing the page deletes nothing


@pytest.mark.parametrize("typed", [None, "", "  ", "Doomed", "DOOMED", "prod", "doome", "doomed2"])
def test_a_delete_without_the_exact_name_is_refused(admin, doomed, typed) -> None:
    data = {} if typed is None else {"confirm_name": typed}
    response = admin.post(f"/clusters/{doomed.pk}/delete/", data)
    assert response.status_code == 400
    assert Cluster.objects.filter(pk=doomed.pk).exists()
    assert doomed.certificate_authorities.count() == 3
    assert not AuditEvent.objects.filter(action="cluster.delete").exists()
    assert "Type doomed exactly to delete this cluster" in response.content.decode()


def test_the_typed_name_deletes_the_cluster(admin, doomed) -> None:
    response = admin.post(f"/clusters/{doomed.pk}/delete/", {"confirm_name": "doomed"})
    assert response.status_code == 302 and response["Location"] == "/clusters/"
    assert not Cluster.objects.filter(pk=doomed.pk).exists()
    assert AuditEvent.objects.filter(action="cluster.delete").count() == 1
    assert "Cluster doomed deleted." in admin.get("/clusters/").content.decode()


def test_the_name_of_another_cluster_does_not_delete_this_one(admin, doomed) -> None:
    other = make_cluster("other")
    response = admin.post(f"/clusters/{doomed.pk}/delete/", {"confirm_name": "other"})
    assert response.status_code == 400
    assert Cluster.objects.filter(pk__in=[doomed.pk, other.pk]).count() == 2


def test_operators_get_neither_the_page_nor_the_delete(web_client, doomed) -> None:
    operator = web_client("operator")
    assert operator.get(f"/clusters/{doomed.pk}/delete/").status_code == 403
    refused = operator.post(f"/clusters/{doomed.pk}/delete/", {"confirm_name": "doomed"})
    assert refused.status_code == 403
    assert Cluster.objects.filter(pk=doomed.pk).exists()
    html = operator.get(f"/clusters/{doomed.pk}/").content.decode()
    assert f"/clusters/{doomed.pk}/delete/" not in html
