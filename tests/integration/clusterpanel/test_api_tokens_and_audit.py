"""API tokens are stored hashed, work once issued and stop after revocation;
sensitive actions leave audit events that cannot be changed."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.models import ApiToken, AppendOnlyError, AuditEvent
from nodes.models import Cluster


def _issue(username: str) -> str:
    out = io.StringIO()
    call_command("issue_api_token", username, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_an_issued_token_is_stored_hashed_and_works(personas: dict[str, User]) -> None:
    key = _issue("viewer")
    assert key.startswith("cp_") and "\n" not in key
    token = ApiToken.objects.get(user=personas["viewer"])
    assert key not in (token.key_hash, token.prefix)
    assert len(token.key_hash) == 64
    for scheme in ("Token", "Bearer"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        assert client.get("/api/v1/clusters/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
def test_a_revoked_or_altered_token_is_rejected(personas: dict[str, User]) -> None:
    key = _issue("operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key[:-1]}{'A' if key[-1] != 'A' else 'B'}")
    assert client.get("/api/v1/clusters/").status_code == 401
    ApiToken.objects.get(user=personas["operator"]).revoke()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/clusters/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or revoked API token."


@pytest.mark.django_db
def test_the_token_role_applies(personas: dict[str, User]) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {_issue('viewer')}")
    response = client.post(
        "/api/v1/clusters/", {"name": "x", "control_plane_endpoint": "10.0.0.1"}, format="json"
    )
    assert response.status_code == 403
    assert Cluster.objects.count() == 0


@pytest.mark.django_db
def test_issuing_for_an_unknown_user_fails_cleanly() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named"):
        call_command("issue_api_token", "ghost")


@pytest.mark.django_db
def test_logins_and_failed_logins_are_audited(personas: dict[str, User]) -> None:
    client = Client()
    bad = client.post("/login/", {"username": "viewer", "password": "wrong"})
    assert bad.status_code == 200
    good = client.post("/login/", {"username": "viewer", "password": "viewer-Passw0rd!"})
    assert good.status_code == 302
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [("auth.login_failed", ""), ("auth.login", "viewer")]
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.details == {"username": "viewer"}
    assert failed.client_ip == "127.0.0.1"


@pytest.mark.django_db
def test_logins_are_throttled_after_repeated_failures(personas: dict[str, User]) -> None:
    client = Client()
    for _ in range(5):
        client.post("/login/", {"username": "operator", "password": "wrong"})
    locked = client.post("/login/", {"username": "operator", "password": "operator-Passw0rd!"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_inventory_changes_are_audited_without_secrets(
    api_client: Callable[[str], Any], ed25519_key: str
) -> None:
    client = api_client("admin")
    cluster = client.post(
        "/api/v1/clusters/", {"name": "c1", "control_plane_endpoint": "10.0.0.1"}, format="json"
    ).json()
    node = client.post(
        "/api/v1/nodes/",
        {"cluster": cluster["id"], "name": "n1", "address": "10.0.0.2", "ssh_password": "pw-123"},
        format="json",
    ).json()
    client.patch(f"/api/v1/nodes/{node['id']}/", {"ssh_private_key": ed25519_key}, format="json")
    client.delete(f"/api/v1/nodes/{node['id']}/")
    client.delete(f"/api/v1/clusters/{cluster['id']}/")
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == [
        "cluster.create",
        "node.create",
        "node.credential_change",
        "node.update",
        "node.credential_change",
        "node.delete",
        "cluster.delete",
    ]
    assert all(e.actor_name == "admin" for e in events)
    assert events[-1].cluster_name == "c1" and events[-1].object_label == "c1"
    credential_events = [e for e in events if e.action == "node.credential_change"]
    assert [e.details for e in credential_events] == [
        {"credential": "password"},
        {"credential": "private key"},
    ]
    text = " ".join(str(e.details) for e in events)
    assert "pw-123" not in text and "PRIVATE KEY" not in text


@pytest.mark.django_db
def test_audit_events_cannot_be_changed_or_deleted(
    personas: dict[str, User], web_client: Callable[[str], Any]
) -> None:
    client = web_client("admin")
    event = AuditEvent.objects.get(action="auth.login")
    event.action = "nothing"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(action="x")
    change = client.post(f"/admin/clusterpanel/auditevent/{event.pk}/change/", {"action": "x"})
    delete = client.post(f"/admin/clusterpanel/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert change.status_code == 403 and delete.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "auth.login"
