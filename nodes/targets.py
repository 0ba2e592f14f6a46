"""The SSH targets of nodes: what ``nodes.ssh`` needs to reach one, read from the inventory.

Credentials are decrypted here, at the last moment, into ``ssh.Credential`` objects whose repr
shows no secret; nothing else in the panel hands a decrypted credential around.
"""

from __future__ import annotations

from django.conf import settings

from nodes import ssh
from nodes.models import Cluster, Node


def timeouts() -> ssh.Timeouts:
    """The SSH timeouts of the deployment's settings (``CLUSTERPANEL_SSH_*``)."""
    defaults = ssh.Timeouts()
    return ssh.Timeouts(
        connect=float(getattr(settings, "CLUSTERPANEL_SSH_CONNECT_TIMEOUT", defaults.connect)),
        banner=float(getattr(settings, "CLUSTERPANEL_SSH_BANNER_TIMEOUT", defaults.banner)),
        auth=float(getattr(settings, "CLUSTERPANEL_SSH_AUTH_TIMEOUT", defaults.auth)),
        keepalive=float(getattr(settings, "CLUSTERPANEL_SSH_KEEPALIVE", defaults.keepalive)),
    )


def _host_key(key_type: str, key_base64: str, fingerprint: str) -> ssh.HostKey | None:
    # A fingerprint pinned by hand has no key beside it; the fingerprint alone is what is compared.
    if not fingerprint:
        return None
    return ssh.HostKey(key_type=key_type, key_base64=key_base64, fingerprint=fingerprint)


def bastion_target(cluster: Cluster) -> ssh.Target | None:
    """The cluster's jump host, or None when its nodes are reached directly."""
    if not cluster.bastion_address:
        return None
    return ssh.Target(
        name=f"bastion of {cluster.name}",
        address=cluster.bastion_address,
        port=cluster.bastion_port,
        credential=ssh.Credential(
            user=cluster.bastion_user,
            private_key=cluster.bastion_private_key,
            passphrase=cluster.bastion_key_passphrase,
            password=cluster.bastion_password,
        ),
        host_key=_host_key(
            cluster.bastion_host_key_type,
            cluster.bastion_host_key,
            cluster.bastion_host_key_fingerprint,
        ),
        trust_on_first_use=cluster.trust_on_first_use,
        timeouts=timeouts(),
    )


def target_for(node: Node) -> ssh.Target:
    """How to reach ``node``: its address, decrypted credential (sudo password included), pinned
    host key (None: not pinned), its cluster's trust-on-first-use setting and bastion."""
    cluster = node.cluster
    return ssh.Target(
        name=node.name,
        address=str(node.address),
        port=node.ssh_port,
        credential=ssh.Credential(
            user=node.ssh_user,
            private_key=node.ssh_private_key,
            passphrase=node.ssh_key_passphrase,
            password=node.ssh_password,
            sudo_password=node.sudo_password,
        ),
        host_key=_host_key(node.host_key_type, node.host_key, node.host_key_fingerprint),
        trust_on_first_use=cluster.trust_on_first_use,
        bastion=bastion_target(cluster),
        timeouts=timeouts(),
    )
