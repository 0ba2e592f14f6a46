"""SSH targets built from the inventory: the right values, decrypted, and no secret in a repr."""

from __future__ import annotations

from typing import Any

import pytest

from nodes import ssh
from nodes.models import Cluster, host_key_fingerprint
from nodes.targets import target_for
from tests.factories import make_cluster, make_node

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAILmpzIxqNVUITri3uGshuMOlsapTTq6Zlg28MYhRwMXy"
SECRETS = ("node-key-passphrase", "node-ssh-pw", "node-sudo-pw", "jump-pw")


@pytest.fixture
def jump_cluster(db: Any) -> Cluster:
    return make_cluster(
        "jump",
        trust_on_first_use=True,
        bastion_address="bastion.example.internal",
        bastion_port=2222,
        bastion_user="jumper",
        bastion_password="jump-pw",
        bastion_host_key_type="ssh-ed25519",
        bastion_host_key=KEY,
        bastion_host_key_fingerprint=host_key_fingerprint(KEY),
    )


def test_a_target_carries_the_node_its_credential_and_its_pinned_key(
    cluster: Cluster, ed25519_key: str
) -> None:
    node = make_node(
        cluster,
        "worker",
        "w-1",
        "10.0.0.21",
        ssh_port=2200,
        ssh_user="deploy",
        ssh_private_key=ed25519_key,
        ssh_key_passphrase="node-key-passphrase",
        sudo_password="node-sudo-pw",
    )
    node.pin_host_key("ssh-ed25519", KEY, None)
    node.save()
    node.refresh_from_db()  # decrypted from the database, not the values just set
    target = target_for(node)
    assert (target.name, target.address, target.port) == ("w-1", "10.0.0.21", 2200)
    assert target.credential == ssh.Credential(
        user="deploy",
        private_key=ed25519_key,
        passphrase="node-key-passphrase",
        sudo_password="node-sudo-pw",
    )
    assert target.host_key == ssh.HostKey("ssh-ed25519", KEY, host_key_fingerprint(KEY))
    assert target.trust_on_first_use is False and target.bastion is None
    assert target.timeouts == ssh.Timeouts(connect=10, banner=10, auth=15, keepalive=15)


def test_an_unpinned_node_has_no_host_key_and_a_hand_pinned_one_has_its_fingerprint(
    cluster: Cluster,
) -> None:
    node = make_node(cluster, "worker", ssh_password="node-ssh-pw")
    assert target_for(node).host_key is None
    node.host_key_fingerprint = host_key_fingerprint(KEY)
    assert target_for(node).host_key == ssh.HostKey("", "", host_key_fingerprint(KEY))


def test_a_target_reaches_its_node_through_the_cluster_bastion(jump_cluster: Cluster) -> None:
    node = make_node(jump_cluster, "worker", ssh_password="node-ssh-pw")
    target = target_for(node)
    assert target.trust_on_first_use is True
    bastion = target.bastion
    assert bastion is not None
    assert (bastion.address, bastion.port) == ("bastion.example.internal", 2222)
    assert bastion.credential == ssh.Credential(user="jumper", password="jump-pw")
    assert bastion.host_key is not None and bastion.host_key.key_base64 == KEY
    assert bastion.bastion is None


def test_timeouts_come_from_the_settings(cluster: Cluster, settings: Any) -> None:
    settings.CLUSTERPANEL_SSH_CONNECT_TIMEOUT = 3
    settings.CLUSTERPANEL_SSH_BANNER_TIMEOUT = 4
    settings.CLUSTERPANEL_SSH_AUTH_TIMEOUT = 5
    settings.CLUSTERPANEL_SSH_KEEPALIVE = 6
    target = target_for(make_node(cluster))
    assert target.timeouts == ssh.Timeouts(connect=3, banner=4, auth=5, keepalive=6)


def test_no_secret_is_in_the_repr_of_a_target(jump_cluster: Cluster, ed25519_key: str) -> None:
    node = make_node(
        jump_cluster,
        "worker",
        ssh_private_key=ed25519_key,
        ssh_key_passphrase="node-key-passphrase",
        sudo_password="node-sudo-pw",
    )
    text = repr(target_for(node)) + str(target_for(node))
    password_node = make_node(jump_cluster, "worker", ssh_password="node-ssh-pw")
    text += repr(target_for(password_node))
    for secret in (*SECRETS, ed25519_key.splitlines()[1]):
        assert secret not in text
    assert "jumper" in text and "bastion.example.internal" in text
