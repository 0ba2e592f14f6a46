"""DRF permission that applies the role rules of ``clusterpanel.roles``."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from clusterpanel.roles import can


class RolePermission(permissions.BasePermission):
    """Reads need ``view``; writes need the view's ``write_permission``.

    A view can name a different permission per action with
    ``action_permissions = {"destroy": "delete_cluster", ...}``.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        action = getattr(view, "action", None)
        per_action: dict[str, str] = getattr(view, "action_permissions", {})
        if action in per_action:
            return can(user, per_action[action])
        if request.method in permissions.SAFE_METHODS:
            return can(user, "view")
        return can(user, getattr(view, "write_permission", "edit_inventory"))
