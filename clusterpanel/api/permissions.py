"""The API's one permission class: the role rules of ``clusterpanel.security.roles``.

A view names what it needs, most specific first:

- ``action_permissions = {"destroy": "delete_cluster"}`` per viewset action;
- ``method_permissions = {"GET": "download_bundle"}`` per HTTP method of a plain view;
- ``write_permission = "manage_tokens"`` for every unsafe method.

Anything not named needs ``view`` to read and ``edit_inventory`` to write.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from clusterpanel.security.roles import can


def needed_permission(request: Request, view: Any) -> str:
    """The permission this request needs on this view."""
    per_action: dict[str, str] = getattr(view, "action_permissions", {})
    action = getattr(view, "action", None)
    if action in per_action:
        return per_action[action]
    per_method: dict[str, str] = getattr(view, "method_permissions", {})
    if request.method in per_method:
        return per_method[request.method]
    if request.method in permissions.SAFE_METHODS:
        return "view"
    return str(getattr(view, "write_permission", "edit_inventory"))


class RolePermission(permissions.BasePermission):
    """Authenticated, and the user's role holds the permission the request needs."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return can(user, needed_permission(request, view))
