"""The OpenAPI schema and Swagger UI are served by the panel itself, with no CDN."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml


@pytest.mark.django_db
def test_swagger_ui_loads_only_local_assets(web_client: Callable[[str], Any]) -> None:
    client = web_client("viewer")
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert not re.search(r"https?://", html)
    # No inline script or style (the Content-Security-Policy forbids them): the start-up
    # script is the page's own ?script URL.
    assert "<script>" not in html and "<style" not in html
    assert "/api/docs/?script=" in assets
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    for asset in assets:
        if asset == "/api/docs/?script=":
            continue
        assert asset.startswith("/static/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()


@pytest.mark.django_db
def test_the_schema_documents_the_inventory_endpoints(web_client: Callable[[str], Any]) -> None:
    schema = yaml.safe_load(web_client("viewer").get("/api/schema/").content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/clusters/", "/api/v1/nodes/"} <= set(schema["paths"])
    node = schema["components"]["schemas"]["Node"]["properties"]
    # Credentials are write-only: they appear in requests, never in responses.
    assert "ssh_private_key" not in node
    request = schema["components"]["schemas"]["NodeRequest"]["properties"]
    assert {"ssh_private_key", "ssh_key_passphrase", "ssh_password"} <= set(request)
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_the_schema_generates_without_warnings_and_validates(tmp_path: Any) -> None:
    """Every endpoint is described (drf-spectacular would otherwise guess and warn)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.services import bootstrap_data_dir

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "CLUSTERPANEL_DATA_DIR": str(tmp_path)}
    bootstrap_data_dir(env)
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--validate",
         "--file", str(tmp_path / "schema.yaml")],
        cwd=root, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    assert "/api/v1/clusters/{id}/join-command/" in schema["paths"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["[null, null]", "3", "null", '"text"'])
def test_a_body_that_is_not_a_json_object_is_a_400(
    api_client: Callable[[str], Any], body: str
) -> None:
    for url in ("/api/v1/clusters/", "/api/v1/nodes/", "/api/v1/pki/inspect/", "/api/v1/tokens/"):
        response = api_client("admin").post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()["detail"] == "The request body must be a JSON object."


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["99999999999999999999999", "²", "-1", "1.5", "abc"])
def test_ids_in_query_parameters_and_bodies_are_checked(
    api_client: Callable[[str], Any], cluster: Any, value: str
) -> None:
    """Numbers too large for a primary key, or digits that are not ASCII, are a 400, not a 500."""
    api = api_client("admin")
    checks = [
        ("/api/v1/nodes/", {"cluster": value}, "cluster"),
        ("/api/v1/certificates/", {"cluster": value}, "cluster"),
        ("/api/v1/tokens/", {"cluster": value}, "cluster"),
        (f"/api/v1/clusters/{cluster.pk}/bundle/", {"node": value}, "node"),
        (f"/api/v1/clusters/{cluster.pk}/kubeadm-config/", {"node": value}, "node"),
    ]
    for url, params, field in checks:
        response = api.get(url, params)
        assert response.status_code == 400, (url, response.content)
        assert field in response.json()["errors"], (url, response.json())
    if value.lstrip("-").isdigit() and value.isascii():
        renew = api.post(
            f"/api/v1/clusters/{cluster.pk}/certificates/renew/",
            {"certificates": [int(value)]},
            format="json",
        )
        assert renew.status_code == 400, renew.content


def test_a_busy_database_is_a_503_with_retry_after() -> None:
    """SQLite allows one writer; when the wait runs out the caller is told to retry."""
    from django.db import OperationalError

    from clusterpanel.api.errors import exception_handler

    response = exception_handler(OperationalError("database is locked"), {})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "try again" in response.data["detail"]
    other = exception_handler(OperationalError("no such table: x"), {})
    assert other.status_code == 500
    assert "no such table" not in str(other.data)


@pytest.mark.django_db
def test_a_busy_database_is_a_503_page_for_the_html_views(rf: Any, personas: Any) -> None:
    from django.db import OperationalError

    from clusterpanel.web.middleware import DatabaseBusyMiddleware

    request = rf.get("/clusters/")
    request.user = personas["viewer"]
    middleware = DatabaseBusyMiddleware(lambda r: None)
    response = middleware.process_exception(request, OperationalError("database is locked"))
    assert response is not None
    assert response.status_code == 503
    assert b"Nothing was saved" in response.content
    assert middleware.process_exception(request, OperationalError("disk I/O error")) is None


@pytest.mark.django_db
def test_the_schema_declares_what_the_responses_hold(web_client: Callable[[str], Any]) -> None:
    """Nulls that responses carry are declared nullable; kubeadm downloads are YAML attachments,
    not JSON strings (found by the schema fuzz test)."""
    schema = yaml.safe_load(web_client("viewer").get("/api/schema/").content)
    components = schema["components"]["schemas"]
    token = components["BootstrapToken"]["properties"]
    assert token["revoked_by"]["nullable"] is True
    assert token["created_by"]["nullable"] is True
    assert components["KubeadmSettings"]["properties"]["updated_at"]["nullable"] is True
    paths = schema["paths"]
    config = paths["/api/v1/clusters/{id}/kubeadm-config/"]["get"]["responses"]["200"]
    assert config["content"]["application/yaml"]["schema"] == {"type": "string", "format": "binary"}
    certs = paths["/api/v1/clusters/{id}/kubeadm-certs/"]["get"]["responses"]["200"]
    assert certs["content"]["application/yaml"]["schema"]["type"] == "object"
    # Every operation declares the API's one error shape for its 4xx answers.
    assert components["Error"]["required"] == ["detail", "errors"]
    for operations in paths.values():
        for operation in operations.values():
            error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}


@pytest.mark.django_db
def test_an_api_url_that_matches_no_route_is_a_json_404(
    api_client: Callable[[str], Any], web_client: Callable[[str], Any]
) -> None:
    """An id that is no number matches no route: still the API's error shape, not a page."""
    for url in ("/api/v1/clusters/AAA/", "/api/v1/clusters/0.5/kubeadm-certs/", "/api/v1/nope/"):
        response = api_client("admin").get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json", url
        assert response.json() == {"detail": "Not found.", "errors": {}}
    page = web_client("admin").get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_every_job_kind_and_its_parameters_are_documented_and_others_refused_by_name(
    web_client: Callable[[str], Any],
) -> None:
    from clusterpanel.errors import InputError
    from clusterpanel.jobs import registry
    from tests import jobkinds

    schema = yaml.safe_load(web_client("viewer").get("/api/schema/").content)
    described = schema["components"]["schemas"]["JobLaunchRequest"]["properties"]["params"][
        "description"
    ]
    lines = {line.split("`")[1]: line for line in described.splitlines() if line.startswith("- `")}
    kinds = registry.kinds()
    assert set(lines) == {kind.name for kind in kinds}
    for kind in kinds:
        if kind.name in (jobkinds.SHELL, jobkinds.READ_ONLY):
            continue  # the tests' own kinds take anything
        for field in kind.param_fields:
            assert f"`{field.name}`" in lines[kind.name], (kind.name, field.name)
        with pytest.raises(InputError) as refused:
            kind.validate_params({"no_such_parameter": "x"})
        assert refused.value.field == "no_such_parameter", kind.name
