"""Who may do what: the one place that decides.

Three roles, each a Django group created by a migration. A user's role is the
highest group they belong to; superusers are admins.

- viewer: reads everything that is not secret.
- operator: viewer + edits inventory, runs jobs, creates/reveals tokens,
  downloads worker bundles, worker join commands and files, and user kubeconfigs.
- admin: operator + CA keys (control-plane and etcd bundles, the certificate key in join
  commands and kubeadm files, kubeadm-certs) and imports, privileged identities
  (``system:masters``, node and component identities, see ``pki.domain.identities``),
  deleting clusters, users, settings.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


class Role(IntEnum):
    NONE = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


GROUP_NAMES = {Role.VIEWER: "viewer", Role.OPERATOR: "operator", Role.ADMIN: "admin"}

# Every permission the panel checks, and the least role that holds it.
PERMISSIONS: dict[str, Role] = {
    "view": Role.VIEWER,
    "edit_inventory": Role.OPERATOR,
    "run_jobs": Role.OPERATOR,
    # Launching, cancelling and retrying jobs (viewers read jobs and their logs).
    "launch_jobs": Role.OPERATOR,
    "manage_tokens": Role.OPERATOR,
    "reveal_tokens": Role.OPERATOR,
    "download_bundle": Role.OPERATOR,
    "issue_certificates": Role.OPERATOR,
    # Scanning a node's SSH host key and pinning it after comparing its fingerprint.
    "approve_host_keys": Role.OPERATOR,
    # Hiding a certificate finding from the open list until an end time.
    "silence_findings": Role.OPERATOR,
    "delete_cluster": Role.ADMIN,
    "manage_ca": Role.ADMIN,
    "download_super_admin": Role.ADMIN,
    # Files that carry CA keys, sa.key or etcd's keys, and the certificate key that decrypts
    # kubeadm-certs: control-plane and etcd bundles, control-plane join commands and files.
    "download_ca_keys": Role.ADMIN,
    # etcd snapshots: every Secret of the cluster, in one file.
    "download_etcd_snapshots": Role.ADMIN,
    # Removing a control-plane or etcd node: etcd's membership and the control plane change.
    "remove_control_plane_nodes": Role.ADMIN,
    # Certificates or tokens for identities that bypass or outrank RBAC (system:masters,
    # kubeadm:cluster-admins, nodes, control-plane components, service accounts).
    "grant_privileged_identities": Role.ADMIN,
    # Extra arguments of the apiserver, kubelet and the other components, and the audit policy:
    # flags such as authorization-mode=AlwaysAllow or anonymous-auth open the cluster to anyone.
    "edit_cluster_security": Role.ADMIN,
    # A cluster's certificate renewal policy: beat then renews and rolls out control-plane
    # certificates (CA keys onto the nodes) on behalf of the admin who saved it.
    "manage_renewal_policy": Role.ADMIN,
    "manage_users": Role.ADMIN,
    # Adding, changing and deleting rows in the Django admin (every role may look there).
    "edit_in_admin": Role.ADMIN,
}


def role_of(user: Any) -> Role:
    if user is None or not user.is_authenticated or not user.is_active:
        return Role.NONE
    if user.is_superuser:
        return Role.ADMIN
    # Cache on the user object: one query per request, not per check.
    cached = getattr(user, "_clusterpanel_role", None)
    if cached is not None:
        return Role(cached)
    names = set(user.groups.values_list("name", flat=True))
    role = max((role for role, name in GROUP_NAMES.items() if name in names), default=Role.NONE)
    user._clusterpanel_role = int(role)
    return role


def can(user: Any, permission: str) -> bool:
    try:
        needed = PERMISSIONS[permission]
    except KeyError:
        raise ValueError(f"unknown permission {permission!r}") from None
    return role_of(user) >= needed


def require_permission(user: Any, permission: str, reason: str) -> None:
    """Refuse (``PermissionDenied`` carrying ``reason``, a 403) unless ``user`` holds
    ``permission``: for a service that serves part of a route's answers to a lesser role."""
    if not can(user, permission):
        raise PermissionDenied(reason)


def role_context(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``role`` and a ``perms_panel`` map for showing buttons."""
    user = getattr(request, "user", None)
    role = role_of(user)
    return {
        "panel_role": role.name.lower(),
        "panel_can": {name: role >= needed for name, needed in PERMISSIONS.items()},
    }
