"""Targets built from the inventory open real sessions on the sshd test hosts (tests/hosts.py):
the decrypted credential and sudo password work, trust on first use learns the key and the
service pins it, a changed key is refused and recorded, a bastion carries scans and sessions.

This is the glue a job runs: ``target_for`` → ``Session.open`` → ``learn_host_key`` after a
first connection under trust on first use, ``record_presented_key`` on ``HostKeyMismatch``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from rest_framework.test import APIClient

from clusterpanel.models import AuditEvent
from clusterpanel.security.audit import Actor
from nodes import host_keys, ssh
from nodes.models import Cluster, Node
from nodes.targets import target_for
from tests import hosts
from tests.factories import make_cluster, make_node
from tests.hosts import HostSpec, TestHost


def _pinned_node(cluster: Cluster, host: TestHost, **fields: Any) -> Node:
    node = make_node(cluster, "worker", host.name, host.address, ssh_port=host.port, **fields)
    node.pin_host_key(host.host_key_type, host.host_key_base64, None)
    node.save()
    return Node.objects.select_related("cluster").get(pk=node.pk)


def test_a_password_login_with_a_sudo_password_runs_as_root(
    cluster: Cluster, test_hosts: list[TestHost]
) -> None:
    host = test_hosts[0]
    node = _pinned_node(
        cluster,
        host,
        ssh_user=hosts.PASSWORD_USER,
        ssh_password=hosts.OPS_PASSWORD,
        sudo_password=hosts.OPS_PASSWORD,
    )
    with ssh.Session.open(target_for(node)) as session:
        assert session.run("id -u", timeout=10).stdout == b"0\n"
    assert not any(hosts.OPS_PASSWORD in line for line in host.received_commands())


def test_a_key_login_without_sudo_password_uses_sudo_n(
    cluster: Cluster, test_hosts: list[TestHost], ssh_client_key: str
) -> None:
    host = test_hosts[1]
    node = _pinned_node(
        cluster, host, ssh_user=hosts.SUDO_NOPASSWD_USER, ssh_private_key=ssh_client_key
    )
    before = len(host.received_commands())
    with ssh.Session.open(target_for(node)) as session:
        assert session.run("hostname", timeout=10).stdout == f"{host.hostname}\n".encode()
    assert host.received_commands()[before].startswith("sudo -n ")


def test_trust_on_first_use_learns_the_key_and_the_service_pins_it(
    test_hosts: list[TestHost], ssh_client_key: str, personas: dict[str, Any]
) -> None:
    host = test_hosts[2]
    cluster = make_cluster("tofu", trust_on_first_use=True)
    node = make_node(
        cluster, "worker", host.name, host.address, ssh_user="root", ssh_private_key=ssh_client_key
    )
    with ssh.Session.open(target_for(node)) as session:
        learned = session.learned_host_key
    assert learned is not None
    host_keys.learn_host_key(node, learned, Actor.for_job(personas["operator"]))
    node.refresh_from_db()
    assert node.host_key_fingerprint == host.host_key_fingerprint
    assert node.host_key_state == "pinned"
    assert AuditEvent.objects.filter(action="node.host_key.trust_on_first_use").count() == 1
    # Without trust on first use, an unpinned node is refused before any login.
    Cluster.objects.filter(pk=cluster.pk).update(trust_on_first_use=False)
    other = make_node(cluster, "worker", "w-2", test_hosts[3].address)
    logins = test_hosts[3].accepted_logins()
    with pytest.raises(ssh.HostKeyUnknown):
        ssh.Session.open(target_for(Node.objects.get(pk=other.pk)))
    assert test_hosts[3].accepted_logins() == logins


def test_a_changed_key_is_refused_and_the_node_shows_it(
    cluster: Cluster,
    make_test_hosts: Callable[[Sequence[HostSpec]], list[TestHost]],
    ssh_client_key: str,
    api_client: Callable[[str], APIClient],
) -> None:
    [host] = make_test_hosts([HostSpec("rekeyed")])
    node = _pinned_node(cluster, host, ssh_user="root", ssh_private_key=ssh_client_key)
    pinned = host.host_key_fingerprint
    presented = host.swap_host_key()
    with pytest.raises(ssh.HostKeyMismatch) as refused:
        ssh.Session.open(target_for(node))
    host_keys.record_presented_key(node, refused.value.presented)
    answer = api_client("viewer").get(f"/api/v1/nodes/{node.pk}/").json()
    assert answer["host_key_state"] == "changed"
    assert (answer["host_key_fingerprint"], answer["presented_host_key_fingerprint"]) == (
        pinned,
        presented,
    )
    # The operator scans what the host presents now and approves it: jobs connect again.
    client = api_client("operator")
    scanned = client.post(f"/api/v1/nodes/{node.pk}/host-key/scan/").json()
    assert scanned["pending_host_key_fingerprint"] == presented
    client.post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/", {"fingerprint": presented}, format="json"
    )
    node.refresh_from_db()
    assert node.host_key_state == "pinned"
    with ssh.Session.open(target_for(node)) as session:
        assert session.run("true", timeout=10).exit_code == 0


def test_a_node_behind_the_bastion_is_scanned_and_reached_through_it(
    test_hosts: list[TestHost], ssh_client_key: str, api_client: Callable[[str], APIClient]
) -> None:
    bastion, host = test_hosts[3], test_hosts[4]
    cluster = make_cluster(
        "behind",
        bastion_address=bastion.address,
        bastion_user="root",
        bastion_private_key=ssh_client_key,
    )
    node = make_node(
        cluster, "worker", host.name, host.address, ssh_user="root", ssh_private_key=ssh_client_key
    )
    # The bastion's own key is not approved yet: nothing goes through it.
    refused = api_client("operator").post(f"/api/v1/nodes/{node.pk}/host-key/scan/")
    assert refused.status_code == 409 and bastion.host_key_fingerprint in refused.json()["detail"]
    admin = api_client("admin")
    admin.post(f"/api/v1/clusters/{cluster.pk}/bastion-host-key/scan/")
    admin.post(
        f"/api/v1/clusters/{cluster.pk}/bastion-host-key/approve/",
        {"fingerprint": bastion.host_key_fingerprint},
        format="json",
    )
    logins = bastion.accepted_logins()
    scanned = api_client("operator").post(f"/api/v1/nodes/{node.pk}/host-key/scan/").json()
    assert scanned["pending_host_key_fingerprint"] == host.host_key_fingerprint
    assert bastion.accepted_logins() == logins + 1  # the scan went through the bastion
    api_client("operator").post(
        f"/api/v1/nodes/{node.pk}/host-key/approve/",
        {"fingerprint": host.host_key_fingerprint},
        format="json",
    )
    node = Node.objects.select_related("cluster").get(pk=node.pk)
    with ssh.Session.open(target_for(node)) as session:
        assert session.run("hostname", timeout=10).stdout == f"{host.hostname}\n".encode()
