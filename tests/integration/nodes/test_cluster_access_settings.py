"""Trust on first use, the bastion and sudo passwords: who may set them, how they are checked,
and that their secrets never come back from the API or a page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.models import AuditEvent
from nodes.models import CLUSTER_SETTINGS, Cluster, Node
from tests.factories import make_node

JUMP = {"bastion_address": "10.1.0.1", "bastion_password": "x"}


def _patch(client: APIClient, cluster: Cluster, body: dict[str, Any]) -> Any:
    return client.patch(f"/api/v1/clusters/{cluster.pk}/", body, format="json")


@pytest.mark.parametrize(
    "body",
    [
        {"trust_on_first_use": True},
        {"bastion_address": "10.1.0.1", "bastion_password": "jump-password-1"},
        {"bastion_port": 2222},
        {"bastion_user": "jumper"},
        {"bastion_host_key_fingerprint": "SHA256:" + "A" * 43},
        {"bastion_password": "jump-password-1"},
    ],
)
def test_only_admins_change_how_the_panel_reaches_the_hosts(
    api_client: Callable[[str], APIClient], cluster: Cluster, body: dict[str, Any]
) -> None:
    before = Cluster.objects.filter(pk=cluster.pk).values().get()
    refused = _patch(api_client("operator"), cluster, body)
    assert refused.status_code == 403, refused.content
    assert Cluster.objects.filter(pk=cluster.pk).values().get() == before
    if "bastion_password" in body and "bastion_address" not in body:
        body = {**body, "bastion_address": "10.1.0.1"}
    assert _patch(api_client("admin"), cluster, body).status_code == 200


def test_operators_still_edit_the_other_settings(
    api_client: Callable[[str], APIClient], cluster: Cluster
) -> None:
    answer = _patch(api_client("operator"), cluster, {"description": "rack 4"})
    assert answer.status_code == 200


def test_the_page_shows_operators_the_access_settings_without_letting_them_change_them(
    web_client: Callable[[str], Client], cluster: Cluster
) -> None:
    client = web_client("operator")
    form = client.get(f"/clusters/{cluster.pk}/edit/").context["form"]
    assert form.fields["trust_on_first_use"].disabled
    assert form.fields["bastion_password"].disabled
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(
        extra_sans="",
        description="rack 4",
        trust_on_first_use="on",
        bastion_address="10.1.0.1",
        bastion_password="jump-password-1",
    )
    data = {k: v for k, v in data.items() if v is not None and v is not False}
    response = client.post(f"/clusters/{cluster.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    cluster.refresh_from_db()
    assert cluster.description == "rack 4"
    assert (cluster.trust_on_first_use, cluster.bastion_address, cluster.bastion_password) == (
        False,
        "",
        "",
    )
    admin_form = web_client("admin").get(f"/clusters/{cluster.pk}/edit/").context["form"]
    assert not admin_form.fields["trust_on_first_use"].disabled


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bastion_address": "not a host!", "bastion_password": "x"}, "bastion_address"),
        ({"bastion_address": "10.1.0.1"}, "bastion_private_key"),
        ({**JUMP, "bastion_port": 0}, "bastion_port"),
        ({**JUMP, "bastion_port": 65536}, "bastion_port"),
        ({**JUMP, "bastion_user": "Root!"}, "bastion_user"),
        ({"bastion_private_key": "not a key"}, "bastion_private_key"),
        ({"bastion_key_passphrase": "p"}, "bastion_key_passphrase"),
        ({"bastion_host_key_fingerprint": "md5:00"}, "bastion_host_key_fingerprint"),
        ({"bastion_private_key": "k", "bastion_password": "x"}, "bastion_password"),
    ],
)  # fmt: skip
def test_bad_bastion_settings_are_a_400_naming_the_field(
    api_client: Callable[[str], APIClient], cluster: Cluster, body: dict[str, Any], field: str
) -> None:
    answer = _patch(api_client("admin"), cluster, body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"], answer.json()


def test_a_bastion_key_is_checked_and_kept_encrypted_and_never_answered(
    api_client: Callable[[str], APIClient],
    web_client: Callable[[str], Client],
    cluster: Cluster,
    encrypted_rsa_key: tuple[str, str],
) -> None:
    key, passphrase = encrypted_rsa_key
    wrong = _patch(
        api_client("admin"),
        cluster,
        {"bastion_address": "Bastion.Example.Internal", "bastion_private_key": key},
    )
    assert "bastion_key_passphrase" in wrong.json()["errors"]
    answer = _patch(
        api_client("admin"),
        cluster,
        {
            "bastion_address": "Bastion.Example.Internal",
            "bastion_private_key": key,
            "bastion_key_passphrase": passphrase,
        },
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["bastion_address"] == "bastion.example.internal"
    assert body["bastion_credential_kind"] == "private key"
    text = (
        answer.content.decode()
        + api_client("viewer").get(f"/api/v1/clusters/{cluster.pk}/").content.decode()
    )
    for page in (f"/clusters/{cluster.pk}/", f"/clusters/{cluster.pk}/edit/"):
        text += web_client("admin").get(page).content.decode()
    assert "PRIVATE KEY" not in text and passphrase not in text
    assert "bastion_private_key" not in body and "bastion_key_passphrase" not in body
    with connection.cursor() as cursor:
        cursor.execute("SELECT bastion_private_key, bastion_key_passphrase FROM nodes_cluster")
        stored = " ".join(cursor.fetchone())
    assert "PRIVATE KEY" not in stored and passphrase not in stored
    [event] = AuditEvent.objects.filter(action="cluster.bastion_credential_change")
    assert event.details == {"credential": "private key"}


def test_a_sudo_password_is_write_only_and_encrypted(
    api_client: Callable[[str], APIClient],
    web_client: Callable[[str], Client],
    cluster: Cluster,
) -> None:
    client = api_client("operator")
    created = client.post(
        "/api/v1/nodes/",
        {
            "cluster": cluster.pk,
            "name": "w-1",
            "address": "10.0.0.21",
            "ssh_password": "ssh-password-1",
            "sudo_password": "sudo-password-1",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    node = Node.objects.get(name="w-1")
    assert node.sudo_password == "sudo-password-1"
    assert created.json()["has_sudo_password"] is True
    text = created.content.decode()
    text += client.get(f"/api/v1/nodes/{node.pk}/").content.decode()
    text += client.get("/api/v1/nodes/").content.decode()
    for page in (f"/nodes/{node.pk}/", f"/clusters/{cluster.pk}/", f"/nodes/{node.pk}/edit/"):
        text += web_client("operator").get(page).content.decode()
    assert "sudo-password-1" not in text and "ssh-password-1" not in text
    with connection.cursor() as cursor:
        cursor.execute("SELECT sudo_password FROM nodes_node")
        assert "sudo-password-1" not in cursor.fetchone()[0]
    assert AuditEvent.objects.filter(action="node.credential_change").exists()

    # Empty keeps it; null removes it.
    client.patch(f"/api/v1/nodes/{node.pk}/", {"sudo_password": ""}, format="json")
    assert Node.objects.get(pk=node.pk).sudo_password == "sudo-password-1"
    cleared = client.patch(f"/api/v1/nodes/{node.pk}/", {"sudo_password": None}, format="json")
    assert cleared.json()["has_sudo_password"] is False
    assert Node.objects.get(pk=node.pk).sudo_password == ""


def test_the_node_form_sets_and_removes_the_sudo_password(
    web_client: Callable[[str], Client], cluster: Cluster
) -> None:
    node = make_node(cluster, "worker", "w-1", "10.0.0.21")
    client = web_client("operator")
    base = {"name": "w-1", "address": "10.0.0.21", "ssh_port": 22, "ssh_user": "root"}
    base["role"] = "worker"
    response = client.post(f"/nodes/{node.pk}/edit/", {**base, "sudo_password": "sudo-password-1"})
    assert response.status_code == 302
    assert Node.objects.get(pk=node.pk).sudo_password == "sudo-password-1"
    client.post(f"/nodes/{node.pk}/edit/", base)  # left empty: kept
    assert Node.objects.get(pk=node.pk).sudo_password == "sudo-password-1"
    client.post(f"/nodes/{node.pk}/edit/", {**base, "clear_sudo_password": "on"})
    assert Node.objects.get(pk=node.pk).sudo_password == ""


def test_a_cluster_form_posted_without_the_access_settings_keeps_their_defaults(
    web_client: Callable[[str], Client], cluster: Cluster
) -> None:
    data = {name: getattr(cluster, name) for name in CLUSTER_SETTINGS}
    data.update(extra_sans="", description="rack 5")
    response = web_client("admin").post(f"/clusters/{cluster.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors
    cluster.refresh_from_db()
    assert (cluster.description, cluster.bastion_port, cluster.bastion_user) == (
        "rack 5",
        22,
        "root",
    )
    assert cluster.trust_on_first_use is False
