"""A value of the wrong JSON type is a 400 naming the field, on every field of every write.

The endpoints and their fields come from the OpenAPI document, so a new serializer field is
checked as soon as it exists: a number where a string belongs, a string where a number or a
boolean belongs, numbers in a list of strings, and so on. Nothing is coerced (``123`` stored as
``"123"``). Form-encoded bodies, which carry only text, still parse numbers from their text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from nodes.models import Cluster, Node
from pki.services import bootstrap as bootstrap_services
from tests.actors import SETUP
from tests.factories import make_node

# What each JSON type is given instead, and a wrong value for the items of a list of that type.
WRONG = {"string": 123, "integer": "12", "boolean": "yes", "array": "x", "object": ["x"]}
WRONG_ITEMS = {"string": [1, 2], "integer": ["1"]}
WRONG_ALSO = {"integer": True}

# Endpoints that take uploads describe their body as a plain object: their fields, by type.
UPLOAD_FIELDS = {
    "/api/v1/clusters/{id}/cfssl/sign/": {
        "ca_config": "string",
        "profile": "string",
        "csr_json": "string",
        "csr_pem": "string",
        "authority": "string",
    },
    "/api/v1/clusters/{id}/import/cfssl-ca/": {
        "ca_pem": "string",
        "ca_key_pem": "string",
        "name": "string",
    },
    "/api/v1/clusters/{id}/import/cfssl-csr/": {"ca_csr": "string", "name": "string"},
    "/api/v1/clusters/{id}/import/kubeadm/": {"archive": "string"},
    "/api/v1/clusters/{id}/binary-import/": {"certificates": "string", "units": "string"},
    "/api/v1/pki/inspect/": {"pem": "string"},
}
# Fields whose schema admits several types: each with a value of none of them.
ANY_OF = {"ttl": [1.5]}


def _schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _type(prop: dict[str, Any], components: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        prop = components[prop["$ref"].rsplit("/", 1)[1]]
    elif "allOf" in prop and len(prop["allOf"]) == 1:
        return _type(prop["allOf"][0], components)
    return prop.get("type")


def _cases() -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, field, wrong value) for every writable field of every write."""
    schema = _schema()
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch"):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if body is None:
                continue
            if "$ref" in body:
                props = components[body["$ref"].rsplit("/", 1)[1]].get("properties", {})
                fields = {
                    name: (_type(prop, components), prop)
                    for name, prop in props.items()
                    if not prop.get("readOnly")
                }
            else:
                fields = {name: (kind, {}) for name, kind in UPLOAD_FIELDS[path].items()}
            for name, (kind, prop) in fields.items():
                if name in ANY_OF:
                    for value in ANY_OF[name]:
                        yield method, path, name, value
                    continue
                if kind is None:
                    continue  # free JSON (kubeadm extra args): checked by the service
                yield method, path, name, WRONG[kind]
                if kind in WRONG_ALSO:
                    yield method, path, name, WRONG_ALSO[kind]
                items = _type(prop.get("items", {}), components) if kind == "array" else None
                if items in WRONG_ITEMS:
                    yield method, path, name, WRONG_ITEMS[items]
                if kind == "object" and prop.get("additionalProperties", {}).get("type"):
                    yield method, path, name, {"key": 1}


CASES = list(_cases())


def test_every_write_endpoint_is_covered() -> None:
    paths = {path for _, path, _, _ in CASES}
    assert {
        "/api/v1/clusters/",
        "/api/v1/nodes/{id}/",
        "/api/v1/tokens/",
        "/api/v1/static-tokens/",
        "/api/v1/clusters/{id}/kubeadm-settings/",
        "/api/v1/clusters/{id}/kubeconfigs/",
        "/api/v1/clusters/{id}/static-tokens/import/",
        *UPLOAD_FIELDS,
    } <= paths
    assert len(CASES) > 80


@pytest.fixture
def rows(cluster: Cluster) -> dict[str, Any]:
    node = make_node(cluster)
    token = bootstrap_services.create_token(
        cluster, bootstrap_services.validate_token_request(), actor=SETUP
    )
    from nodes.health.findings import Finding

    finding = Finding.objects.create(
        cluster=cluster, node=node, kind="expiring", severity="warning", path="/p", message="m"
    )
    return {"cluster": cluster, "node": node, "token": token, "finding": finding}


def _url(path: str, rows: dict[str, Any]) -> str:
    owner = {"/api/v1/nodes/": "node", "/api/v1/tokens/": "token", "/api/v1/findings/": "finding"}
    for prefix, name in owner.items():
        if path.startswith(prefix):
            return path.replace("{id}", str(rows[name].pk))
    return path.replace("{id}", str(rows["cluster"].pk))


def _names(errors: dict[str, Any], field: str) -> bool:
    return any(key == field or key.startswith((f"{field}.", f"{field}[")) for key in errors)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "field", "value"),
    CASES,
    ids=[f"{m} {p} {f}={v!r}" for m, p, f, v in CASES],
)
def test_a_wrong_type_is_a_400_naming_the_field(
    api_client: Callable[[str], APIClient],
    rows: dict[str, Any],
    method: str,
    path: str,
    field: str,
    value: Any,
) -> None:
    before = (Cluster.objects.count(), Node.objects.count())
    client = api_client("admin")
    response = getattr(client, method)(_url(path, rows), {field: value}, format="json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    errors = response.json()["errors"]
    assert _names(errors, field), errors
    assert (Cluster.objects.count(), Node.objects.count()) == before


@pytest.mark.django_db
def test_strings_are_stored_as_given(api_client: Callable[[str], APIClient]) -> None:
    body = {"name": "typed", "control_plane_endpoint": "10.0.0.10:6443", "extra_sans": ["a.b"]}
    response = api_client("admin").post("/api/v1/clusters/", body, format="json")
    assert response.status_code == 201
    assert Cluster.objects.get(name="typed").extra_sans == ["a.b"]


@pytest.mark.django_db
def test_form_encoded_bodies_still_read_numbers_from_text(
    api_client: Callable[[str], APIClient], cluster: Cluster
) -> None:
    body = {
        "cluster": str(cluster.pk),
        "name": "w-1",
        "address": "10.0.0.21",
        "ssh_port": "2222",
        "role": "worker",
    }
    response = api_client("admin").post("/api/v1/nodes/", body, format="multipart")
    assert response.status_code == 201, response.content
    assert Node.objects.get(name="w-1").ssh_port == 2222
