"""Limits of a request are answered, never a 500: on every route of the API and of the pages.

A body over the size limit is a 413 that says the limit; JSON nested deeper than any input of the
panel is a 400; a number too large for what it counts is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.api.parsers import MAX_JSON_DEPTH
from nodes.models import Cluster
from tests.routes import Route, api_routes, page_routes

BIG = 3 * 1024 * 1024  # over the 2.5 MiB a form or JSON body may have
WRITES = ("post", "put", "patch")


@pytest.fixture
def admin_api(api_client: Callable[[str], APIClient]) -> APIClient:
    client = api_client("admin")
    client.raise_request_exception = False
    return client


@pytest.fixture
def admin_web(web_client: Callable[[str], Client]) -> Client:
    client = web_client("admin")
    client.raise_request_exception = False
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r.path)
def test_an_api_body_over_the_limit_is_a_413(
    admin_api: APIClient, cluster: Cluster, route: Route
) -> None:
    body = '{"description": "' + "a" * BIG + '"}'
    for method in WRITES:
        response = admin_api.generic(method.upper(), route.path, body, "application/json")
        assert response.status_code == 413, (method, response.status_code)
        assert "2.5 MiB" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("route", page_routes(), ids=lambda r: r.path)
def test_a_page_body_over_the_limit_is_a_413(
    admin_web: Client, cluster: Cluster, route: Route
) -> None:
    response = admin_web.post(route.path, {"description": "a" * BIG})
    assert response.status_code == 413, response.status_code
    assert "2.5 MiB" in response.content.decode()


@pytest.mark.django_db
def test_an_upload_over_the_multipart_limit_is_a_413(
    admin_api: APIClient, cluster: Cluster
) -> None:
    # Uploads may be 10 MiB; a multipart body beyond 11 MiB is refused before it is read.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="archive"; filename="pki.tar.gz"\r\n'
        b"Content-Type: application/gzip\r\n\r\n" + b"x" * (12 * 1024 * 1024) + b"\r\n--b--\r\n"
    )
    response = admin_api.generic(
        "POST",
        f"/api/v1/clusters/{cluster.pk}/import/kubeadm/",
        body,
        "multipart/form-data; boundary=b",
    )
    assert response.status_code == 413
    assert "11 MiB" in response.json()["detail"]


@pytest.mark.django_db
def test_a_large_form_field_in_an_upload_is_a_413(
    admin_api: APIClient, admin_web: Client, cluster: Cluster
) -> None:
    # Under the multipart limit, but a text field over 2.5 MiB: Django stops reading it.
    fields = {"csv": "a" * BIG, "replace": "false"}
    api = admin_api.post(
        f"/api/v1/clusters/{cluster.pk}/static-tokens/import/", fields, format="multipart"
    )
    assert api.status_code == 413
    assert "2.5 MiB" in api.json()["detail"]
    page = admin_web.post(f"/clusters/{cluster.pk}/config/static-tokens/import/", fields)
    assert page.status_code == 413


@pytest.mark.django_db
@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r.path)
def test_deeply_nested_json_is_a_400(admin_api: APIClient, cluster: Cluster, route: Route) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 1000, 100_000):
        body = '{"name": ' + "[" * depth + "]" * depth + "}"
        for method in WRITES:
            response = admin_api.generic(method.upper(), route.path, body, "application/json")
            assert response.status_code < 500, (method, depth, response.status_code)
            if response.status_code == 400 and "errors" in response.json():
                detail = response.json()["detail"]
                assert "nests deeper" in detail or "Invalid input" in detail, detail


@pytest.mark.django_db
def test_nesting_within_the_limit_still_parses(admin_api: APIClient, cluster: Cluster) -> None:
    depth = MAX_JSON_DEPTH - 1
    body = '{"name": ' + "[" * depth + "]" * depth + "}"
    response = admin_api.generic("POST", "/api/v1/clusters/", body, "application/json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]  # a list where a name belongs, not a parse error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/certificates/?expiring_within_days=99999999999", "expiring_within_days"),
        ("/api/v1/certificates/?expiring_within_days=36501", "expiring_within_days"),
        ("/api/v1/certificates/?expiring_within_days=-1", "expiring_within_days"),
        ("/api/v1/certificates/?cluster=99999999999999999999999", "cluster"),
        ("/api/v1/nodes/?cluster=99999999999999999999999", "cluster"),
    ],
)
def test_a_query_number_out_of_range_is_a_400(admin_api: APIClient, path: str, name: str) -> None:
    response = admin_api.get(path)
    assert response.status_code == 400
    assert name in response.json()["errors"]


@pytest.mark.django_db
def test_expiring_within_days_in_range_filters(admin_api: APIClient) -> None:
    response = admin_api.get("/api/v1/certificates/?expiring_within_days=36500")
    assert response.status_code == 200
