"""Bootstrap tokens through the REST API: format, shown once, status from the clock, bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
import yaml

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models.tokens import BootstrapToken

TOKEN_RE = re.compile(r"\A([a-z0-9]{6})\.([a-z0-9]{16})\Z")
pytestmark = pytest.mark.django_db


def ids(response: Any) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def create(api: Any, target: Cluster, **fields: Any) -> Any:
    return api.post("/api/v1/tokens/", {"cluster": target.pk, **fields}, format="json")


def test_it_creates_a_token_in_kubeadms_format_and_returns_it_once(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    response = create(api, cluster, description="rack 4")
    assert response.status_code == 201, response.json()
    body = response.json()
    match = TOKEN_RE.match(body["token"])
    assert match is not None
    token_id, secret = match.groups()
    assert body["token_id"] == token_id
    assert body["usages"] == ["signing", "authentication"]
    assert body["groups"] == ["system:bootstrappers:kubeadm:default-node-token"]
    assert body["ttl"] == 24 * 3600 and body["status"] == "active"
    created = datetime.fromisoformat(body["created_at"])
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(hours=24)

    listing = api.get(f"/api/v1/tokens/?cluster={cluster.pk}")
    detail = api.get(f"/api/v1/tokens/{body['id']}/")
    for later in (listing, detail):
        assert later.status_code == 200
        assert token_id in later.content.decode()
        assert secret not in later.content.decode()
        row = later.json()["results"][0] if "results" in later.json() else later.json()
        assert row["token_id"] == token_id and "token" not in row
    event = AuditEvent.objects.get(action="token.create")
    assert event.object_label == token_id and secret not in json.dumps(event.details)


def test_a_frozen_clock_moves_a_token_from_active_to_expired(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        body = create(api, cluster, ttl="2h").json()
        assert body["status"] == "active"
    with time_machine.travel(start + timedelta(hours=1, minutes=59), tick=False):
        assert api.get(f"/api/v1/tokens/{body['id']}/").json()["status"] == "active"
        assert ids(api.get("/api/v1/tokens/?status=active")) == [body["id"]]
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        assert api.get(f"/api/v1/tokens/{body['id']}/").json()["status"] == "expired"
        assert ids(api.get("/api/v1/tokens/?status=active")) == []
        assert ids(api.get("/api/v1/tokens/?status=expired")) == [body["id"]]


def test_a_ttl_of_zero_never_expires(api_client: Callable[[str], Any], cluster: Cluster) -> None:
    body = create(api_client("operator"), cluster, ttl=0).json()
    assert body["expires_at"] is None and body["ttl"] == 0
    with time_machine.travel(datetime(2099, 1, 1, tzinfo=UTC)):
        assert BootstrapToken.objects.get(pk=body["id"]).status() == "active"


def test_it_takes_a_given_token_usages_groups_and_go_durations(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    response = create(
        api_client("operator"),
        cluster,
        token="abcdef.0123456789abcdef",
        ttl="1h30m",
        usages=["authentication", "signing"],
        groups=["system:bootstrappers:kubeadm:default-node-token", "system:bootstrappers:rack-4"],
    )
    assert response.status_code == 201, response.json()
    assert response.json()["token"] == "abcdef.0123456789abcdef"
    assert response.json()["ttl"] == 5400


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"token": "ABCDEF.0123456789abcdef"}, "token"),
        ({"token": "abcdef0123456789abcdef"}, "token"),
        ({"token": "abcde.0123456789abcdef"}, "token"),
        ({"groups": ["system:masters"]}, "groups"),
        ({"groups": ["system:bootstrappers:Bad"]}, "groups"),
        ({"groups": "system:bootstrappers:x"}, "groups"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": "-3h"}, "ttl"),
        ({"ttl": "tomorrow"}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"usages": ["signing", "encryption"]}, "usages"),
        ({"usages": ["signing"], "groups": ["system:bootstrappers:x"]}, "groups"),
        ({"description": "two\nlines"}, "description"),
        ({"cluster": 999999}, "cluster"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(
    api_client: Callable[[str], Any], cluster: Cluster, fields: dict[str, Any], field: str
) -> None:
    response = create(api_client("operator"), cluster, **fields)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["errors"], body
    assert body["detail"].startswith("Invalid input")
    assert not BootstrapToken.objects.exists()
    # A rejected token value is never echoed back.
    assert "0123456789abcdef" not in response.content.decode()


def test_a_duplicate_token_id_is_refused(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    assert create(api, cluster, token="abcdef.0123456789abcdef").status_code == 201
    response = create(api, cluster, token="abcdef.aaaaaaaaaaaaaaaa")
    assert response.status_code == 400
    assert "already exists" in response.json()["errors"]["token"][0]
    assert BootstrapToken.objects.count() == 1


def test_reveal_is_audited_and_renders_the_secret_and_the_kubeadm_command(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    body = create(api, cluster, token="abcdef.0123456789abcdef", description="rack 4").json()
    assert api_client("viewer").post(f"/api/v1/tokens/{body['id']}/reveal/").status_code == 403
    response = api.post(f"/api/v1/tokens/{body['id']}/reveal/")
    assert response.status_code == 200
    revealed = response.json()
    assert revealed["token"] == "abcdef.0123456789abcdef"
    manifest = yaml.safe_load(revealed["secret_manifest"])
    assert manifest["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert manifest["type"] == "bootstrap.kubernetes.io/token"
    data = manifest["stringData"]
    assert data["token-id"] == "abcdef" and data["token-secret"] == "0123456789abcdef"
    assert data["usage-bootstrap-signing"] == "true"
    assert data["usage-bootstrap-authentication"] == "true"
    assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    assert data["description"] == "rack 4"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["expiration"])
    command = revealed["kubeadm_command"]
    assert command.startswith("kubeadm token create abcdef.0123456789abcdef --ttl ")
    assert "--usages signing,authentication" in command
    assert "--description 'rack 4'" in command
    events = AuditEvent.objects.filter(action="token.reveal")
    assert events.count() == 1
    assert events[0].actor_name == "operator"
    assert "0123456789abcdef" not in json.dumps(events[0].details)


def test_revoke_marks_the_token_revoked_and_is_audited(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    api = api_client("operator")
    body = create(api, cluster).json()
    response = api.post(f"/api/v1/tokens/{body['id']}/revoke/")
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert response.json()["revoked_by"] == "operator"
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_viewers_list_tokens_but_cannot_create_them(
    api_client: Callable[[str], Any], cluster: Cluster
) -> None:
    create(api_client("operator"), cluster)
    assert api_client("viewer").get("/api/v1/tokens/").status_code == 200
    assert create(api_client("viewer"), cluster).status_code == 403
    assert api_client("viewer").get("/api/v1/tokens/?status=bogus").status_code == 400
