"""Scanning and approving host keys, trust on first use and what jobs report, through the API,
the pages and the services; scans go to the real sshd test hosts (tests/hosts.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clusterpanel.errors import Conflict
from clusterpanel.models import AuditEvent
from clusterpanel.security.audit import Actor
from nodes import host_keys, ssh
from nodes.models import Cluster, Node, host_key_fingerprint, host_key_state
from nodes.targets import target_for
from tests.factories import make_cluster, make_node
from tests.hosts import TestHost
from tests.services import free_port

KEY_A = "AAAAC3NzaC1lZDI1NTE5AAAAILmpzIxqNVUITri3uGshuMOlsapTTq6Zlg28MYhRwMXy"
KEY_B = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
FP_A, FP_B = host_key_fingerprint(KEY_A), host_key_fingerprint(KEY_B)


@pytest.fixture
def host(test_hosts: list[TestHost]) -> TestHost:
    return test_hosts[0]


@pytest.fixture
def node(cluster: Cluster, host: TestHost) -> Node:
    return make_node(cluster, "worker", "w-1", host.address, ssh_port=host.port)


def _pending(node: Node, key: str = KEY_A) -> Node:
    node.pending_host_key_type = "ssh-ed25519"
    node.pending_host_key = key
    node.pending_host_key_fingerprint = host_key_fingerprint(key)
    node.save()
    return node


def _keygen_fingerprint(host: TestHost) -> str:
    """The fingerprint an operator reads on the machine: ``ssh-keygen -lf`` of its public key."""
    listing = subprocess.run(
        ["ssh-keygen", "-lf", f"{host.host_key_path}.pub"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()[1]


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


# --- scan and approve over the API, against a real sshd ------------------------------------------


def test_an_operator_scans_a_real_host_and_approves_its_key(
    api_client: Callable[[str], APIClient], node: Node, host: TestHost
) -> None:
    client = api_client("operator")
    scanned = client.post(f"/api/v1/nodes/{node.pk}/host-key/scan/")
    assert scanned.status_code == 200, scanned.content
    body = scanned.json()
    assert body["host_key_state"] == "pending"
    assert body["pending_host_key_fingerprint"] == _keygen_fingerprint(host)
    assert body["scanned_fingerprint"] == host.host_key_fingerprint
    assert body["matches_pinned"] is False
    assert body["host_key_fingerprint"] == ""
    [scan] = _events("node.host_key.scan")
    assert scan.details["fingerprint"] == host.host_key_fingerprint
    assert scan.actor.username == "operator" and scan.via == "api"

    approved = client.post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/",
        {"fingerprint": host.host_key_fingerprint},
        format="json",
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["host_key_state"] == "pinned"
    assert approved.json()["pending_host_key_fingerprint"] == ""
    node.refresh_from_db()
    assert (node.host_key_type, node.host_key) == (host.host_key_type, host.host_key_base64)
    assert node.host_key_fingerprint == host.host_key_fingerprint
    assert node.host_key_approved_by is not None
    assert node.host_key_approved_by.username == "operator"
    [approve] = _events("node.host_key.approve")
    assert approve.details == {"old": "", "new": host.host_key_fingerprint}
    # Jobs now connect with exactly that key.
    target = target_for(node)
    assert target.host_key == ssh.HostKey(
        host.host_key_type, host.host_key_base64, host.host_key_fingerprint
    )


def test_scanning_the_pinned_key_again_leaves_the_node_pinned(
    api_client: Callable[[str], APIClient], node: Node, host: TestHost
) -> None:
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()
    answer = api_client("operator").post(f"/api/v1/nodes/{node.pk}/host-key/scan/").json()
    assert answer["matches_pinned"] is True
    assert answer["host_key_state"] == "pinned"
    assert answer["pending_host_key_fingerprint"] == ""


def test_a_host_that_presents_another_key_is_pending_beside_the_pinned_one(
    api_client: Callable[[str], APIClient], node: Node, host: TestHost
) -> None:
    node.pin_host_key("ssh-ed25519", KEY_A, None)
    node.save()
    answer = api_client("admin").post(f"/api/v1/nodes/{node.pk}/host-key/scan/").json()
    assert answer["host_key_state"] == "pending"
    assert answer["host_key_fingerprint"] == FP_A
    assert answer["pending_host_key_fingerprint"] == host.host_key_fingerprint


def test_an_unreachable_host_is_a_409_that_names_it(
    api_client: Callable[[str], APIClient], cluster: Cluster
) -> None:
    port = free_port()  # nothing listens there
    node = make_node(cluster, "worker", "w-9", "127.0.0.1", ssh_port=port)
    answer = api_client("operator").post(f"/api/v1/nodes/{node.pk}/host-key/scan/")
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert f"127.0.0.1:{port}" in detail and "refused" in detail.lower()
    node.refresh_from_db()
    assert node.host_key_state == "unknown" and node.host_key_scanned_at is None
    assert _events("node.host_key.scan") == []


@pytest.mark.parametrize(
    ("fingerprint", "why"),
    [(FP_B, "another key's"), ("SHA256:short", "malformed"), ("", "empty"), (None, "missing")],
)
def test_approving_anything_but_the_scanned_fingerprint_is_a_400_naming_it(
    api_client: Callable[[str], APIClient], node: Node, fingerprint: str | None, why: str
) -> None:
    _pending(node)
    body = {} if fingerprint is None else {"fingerprint": fingerprint}
    answer = api_client("operator").post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/", body, format="json"
    )
    assert answer.status_code == 400, why
    assert "fingerprint" in answer.json()["errors"]
    node.refresh_from_db()
    assert node.host_key_fingerprint == "" and node.host_key_state == "pending"
    assert _events("node.host_key.approve") == []


def test_approving_without_a_scanned_key_is_a_409(
    api_client: Callable[[str], APIClient], node: Node
) -> None:
    answer = api_client("operator").post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_A}, format="json"
    )
    assert answer.status_code == 409
    assert "scan" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("persona", "status"), [(None, 401), ("outsider", 403), ("viewer", 403), ("operator", 200)]
)
def test_who_may_scan_and_approve(
    api_client: Callable[[str | None], APIClient],
    node: Node,
    persona: str | None,
    status: int,
) -> None:
    _pending(node)
    client = api_client(persona)
    approve = client.post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_A}, format="json"
    )
    scan = client.post(f"/api/v1/nodes/{node.pk}/host-key/scan/")
    assert (approve.status_code, scan.status_code) == (status, status)
    node.refresh_from_db()
    assert (node.host_key_fingerprint == FP_A) == (status == 200)


# --- changed keys, trust on first use, facts: what the engine reports -----------------------------


def test_a_key_a_job_met_shows_the_node_changed_with_both_fingerprints(
    api_client: Callable[[str], APIClient], web_client: Callable[[str], Client], node: Node
) -> None:
    node.pin_host_key("ssh-ed25519", KEY_A, None)
    node.save()
    host_keys.record_presented_key(node, FP_B)
    answer = api_client("viewer").get(f"/api/v1/nodes/{node.pk}/").json()
    assert answer["host_key_state"] == "changed"
    assert (answer["host_key_fingerprint"], answer["presented_host_key_fingerprint"]) == (
        FP_A,
        FP_B,
    )
    [event] = _events("node.host_key.changed")
    assert event.details == {"pinned": FP_A, "presented": FP_B} and event.via == "job"

    for url in (f"/nodes/{node.pk}/", f"/clusters/{node.cluster_id}/"):
        page = web_client("viewer").get(url).content.decode()
        assert 'class="badge host-key-changed"' in page, url
        assert FP_A[:21] in page and FP_B[:21] in page, url
    detail = web_client("viewer").get(f"/nodes/{node.pk}/").content.decode()
    assert f'<code class="host-key-changed-text" id="presented-fingerprint">{FP_B}</code>' in detail

    # Scanning shows what the host presents now; approving it settles the change.
    _pending(Node.objects.get(pk=node.pk), KEY_B)
    approved = api_client("operator").post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_B}, format="json"
    )
    assert approved.json()["host_key_state"] == "pinned"
    assert approved.json()["presented_host_key_fingerprint"] == ""


def test_the_pinned_key_presented_again_is_not_a_change(node: Node) -> None:
    node.pin_host_key("ssh-ed25519", KEY_A, None)
    node.save()
    host_keys.record_presented_key(node, FP_A)
    node.refresh_from_db()
    assert node.host_key_state == "pinned" and _events("node.host_key.changed") == []


def test_trust_on_first_use_pins_the_first_key_and_only_that(
    personas: dict[str, Any], node: Node
) -> None:
    key = ssh.HostKey("ssh-ed25519", KEY_A, FP_A)
    actor = Actor.for_job(personas["operator"])
    with pytest.raises(Conflict, match="does not trust host keys on first use"):
        host_keys.learn_host_key(node, key, actor)
    Cluster.objects.filter(pk=node.cluster_id).update(trust_on_first_use=True)
    host_keys.learn_host_key(node, key, actor)
    node.refresh_from_db()
    assert (node.host_key_fingerprint, node.host_key) == (FP_A, KEY_A)
    assert node.host_key_approved_by == personas["operator"]
    [event] = _events("node.host_key.trust_on_first_use")
    assert event.details["fingerprint"] == FP_A and event.via == "job"
    host_keys.learn_host_key(node, key, actor)  # the same key again: nothing new
    with pytest.raises(Conflict, match="already has the pinned host key"):
        host_keys.learn_host_key(node, ssh.HostKey("ssh-ed25519", KEY_B, FP_B), actor)
    node.refresh_from_db()
    assert node.host_key_fingerprint == FP_A
    assert len(_events("node.host_key.trust_on_first_use")) == 1


FACTS = {
    "hostname": "w-1",
    "os_id": "debian",
    "os_version": "12",
    "kernel": "6.1.0-18-amd64",
    "cpus": 4,
    "memory_bytes": 8 * 2**30,
    "product_uuid": "4c4c4544-0042-3510-8052-b4c04f384833",
    "mac_addresses": {"eth0": "52:54:00:12:34:56"},
}


def test_facts_are_stored_with_their_time_and_summarised_on_the_node_page(
    api_client: Callable[[str], APIClient], web_client: Callable[[str], Client], node: Node
) -> None:
    assert "Not read yet" in web_client("viewer").get(f"/nodes/{node.pk}/").content.decode()
    host_keys.record_facts(node, FACTS)
    answer = api_client("viewer").get(f"/api/v1/nodes/{node.pk}/").json()
    assert answer["facts"] == FACTS and answer["facts_read_at"]
    page = web_client("viewer").get(f"/nodes/{node.pk}/").content.decode()
    for shown in (
        "debian 12",
        "6.1.0-18-amd64",
        "<dd>4</dd>",
        "8.0 GiB",
        FACTS["product_uuid"],
        "eth0 52:54:00:12:34:56",
    ):
        assert shown in page, shown


# --- the node page ------------------------------------------------------------------------------


def test_the_node_page_offers_approval_of_the_pending_key_to_operators_only(
    web_client: Callable[[str], Client], node: Node
) -> None:
    _pending(node)
    page = web_client("operator").get(f"/nodes/{node.pk}/").content.decode()
    assert 'class="badge host-key-pending"' in page and FP_A in page
    assert f'<input type="hidden" name="fingerprint" value="{FP_A}"' in page
    assert 'name="csrfmiddlewaretoken"' in page and 'id="scan-host-key"' in page
    viewer = web_client("viewer").get(f"/nodes/{node.pk}/").content.decode()
    assert FP_A in viewer
    assert 'id="approve-host-key"' not in viewer and 'id="scan-host-key"' not in viewer
    refused = web_client("viewer").post(
        f"/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_A}
    )
    assert refused.status_code == 403


def test_approving_on_the_page_pins_the_key(
    web_client: Callable[[str], Client], node: Node
) -> None:
    _pending(node)
    client = web_client("operator")
    response = client.post(f"/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_A})
    assert response.status_code == 302 and response["Location"] == f"/nodes/{node.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert 'class="badge host-key-pinned"' in page and f"Host key {FP_A} of w-1 approved" in page
    [event] = _events("node.host_key.approve")
    assert event.via == "web"


def test_a_wrong_fingerprint_on_the_page_is_shown_and_kept(
    web_client: Callable[[str], Client], node: Node
) -> None:
    _pending(node)
    response = web_client("operator").post(
        f"/nodes/{node.pk}/host-key/approve/", {"fingerprint": FP_B}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="fingerprint-error"' in page
    assert f'value="{FP_B}"' in page  # the input the operator sent, not replaced
    assert Node.objects.get(pk=node.pk).host_key_fingerprint == ""


def test_scanning_on_the_page_keeps_the_key_pending(
    web_client: Callable[[str], Client], node: Node, host: TestHost
) -> None:
    client = web_client("operator")
    response = client.post(f"/nodes/{node.pk}/host-key/scan/")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert f'id="pending-fingerprint">{host.host_key_fingerprint}</code>' in page
    assert f"presents {host.host_key_fingerprint}" in page
    [event] = _events("node.host_key.scan")
    assert event.via == "web"


def test_an_unreachable_host_on_the_page_says_why(
    web_client: Callable[[str], Client], cluster: Cluster
) -> None:
    port = free_port()
    node = make_node(cluster, "worker", "w-9", "127.0.0.1", ssh_port=port)
    response = web_client("operator").post(f"/nodes/{node.pk}/host-key/scan/")
    assert response.status_code == 409
    assert f"127.0.0.1:{port}" in response.content.decode()


# --- the bastion --------------------------------------------------------------------------------


def test_an_admin_scans_and_approves_the_bastion_key(
    api_client: Callable[[str], APIClient], host: TestHost
) -> None:
    cluster = make_cluster(
        "jump", bastion_address=host.address, bastion_port=host.port, bastion_password="pw"
    )
    refused = api_client("operator").post(f"/api/v1/clusters/{cluster.pk}/bastion-host-key/scan/")
    assert refused.status_code == 403
    client = api_client("admin")
    scanned = client.post(f"/api/v1/clusters/{cluster.pk}/bastion-host-key/scan/").json()
    assert scanned["bastion_host_key_state"] == "pending"
    assert scanned["bastion_pending_host_key_fingerprint"] == host.host_key_fingerprint
    wrong = client.post(
        f"/api/v1/clusters/{cluster.pk}/bastion-host-key/approve/",
        {"fingerprint": FP_A},
        format="json",
    )
    assert wrong.status_code == 400 and "fingerprint" in wrong.json()["errors"]
    approved = client.post(
        f"/api/v1/clusters/{cluster.pk}/bastion-host-key/approve/",
        {"fingerprint": host.host_key_fingerprint},
        format="json",
    )
    assert approved.json()["bastion_host_key_state"] == "pinned"
    cluster.refresh_from_db()
    node = make_node(cluster, "worker", "w-1", "10.0.0.21")
    bastion = target_for(node).bastion
    assert bastion is not None and bastion.host_key is not None
    assert bastion.host_key.key_base64 == host.host_key_base64
    assert [e.details["new"] for e in _events("cluster.bastion_host_key.approve")] == [
        host.host_key_fingerprint
    ]


def test_scanning_a_cluster_without_bastion_is_a_409(
    api_client: Callable[[str], APIClient], cluster: Cluster
) -> None:
    answer = api_client("admin").post(f"/api/v1/clusters/{cluster.pk}/bastion-host-key/scan/")
    assert answer.status_code == 409 and "no bastion" in answer.json()["detail"]


def test_the_bastion_key_is_scanned_and_approved_on_the_cluster_page_by_admins(
    web_client: Callable[[str], Client], test_hosts: list[TestHost]
) -> None:
    bastion = test_hosts[1]
    cluster = make_cluster(
        "jump", bastion_address=bastion.address, bastion_port=22, bastion_password="pw"
    )
    url = f"/clusters/{cluster.pk}/"
    operator = web_client("operator")
    assert 'id="scan-bastion-key"' not in operator.get(url).content.decode()
    assert operator.post(f"{url}bastion-host-key/scan/").status_code == 403
    admin = web_client("admin")
    assert admin.post(f"{url}bastion-host-key/scan/").status_code == 302
    page = admin.get(url).content.decode()
    assert f'id="bastion-pending-fingerprint">{bastion.host_key_fingerprint}</code>' in page
    assert f'name="fingerprint" value="{bastion.host_key_fingerprint}"' in page
    wrong = admin.post(f"{url}bastion-host-key/approve/", {"fingerprint": FP_A})
    assert wrong.status_code == 400 and "is not the fingerprint" in wrong.content.decode()
    approved = admin.post(
        f"{url}bastion-host-key/approve/", {"fingerprint": bastion.host_key_fingerprint}
    )
    assert approved.status_code == 302
    page = admin.get(url).content.decode()
    assert f'id="bastion-pinned-fingerprint">{bastion.host_key_fingerprint}</code>' in page
    assert 'class="badge host-key-pinned"' in page


def test_a_fingerprint_typed_on_the_node_form_that_matches_the_scan_pins_the_scanned_key(
    api_client: Callable[[str], APIClient], node: Node
) -> None:
    _pending(node)
    answer = api_client("operator").patch(
        f"/api/v1/nodes/{node.pk}/", {"host_key_fingerprint": FP_A}, format="json"
    )
    assert answer.json()["host_key_state"] == "pinned"
    node.refresh_from_db()
    assert (node.host_key, node.pending_host_key_fingerprint) == (KEY_A, "")


@pytest.mark.parametrize(
    ("pinned", "pending", "presented", "state"),
    [
        ("", "", "", "unknown"),
        ("", FP_A, "", "pending"),
        (FP_A, "", "", "pinned"),
        (FP_A, FP_A, "", "pinned"),  # a scan found the pinned key
        (FP_A, FP_B, "", "pending"),  # a scan found another key
        (FP_A, "", FP_B, "changed"),
        (FP_A, FP_B, FP_B, "changed"),  # scanned again, not approved yet
        (FP_A, "", FP_A, "pinned"),  # the pinned key typed again by hand
    ],
)
def test_host_key_states(pinned: str, pending: str, presented: str, state: str) -> None:
    assert host_key_state(pinned, pending, presented) == state
