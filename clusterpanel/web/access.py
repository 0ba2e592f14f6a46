"""The one access check of the HTML views: a role permission, then the object or a 404.

Every page starts with ``require`` or ``get_for_user``; the rules themselves live in
``clusterpanel.security.roles``. The API applies the same rules through
``clusterpanel.api.permissions.RolePermission``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from clusterpanel.security.roles import can

M = TypeVar("M", bound=models.Model)


def require(request: HttpRequest, need: str) -> None:
    """Refuse (403) a user whose role lacks the permission ``need``."""
    if not can(request.user, need):
        raise PermissionDenied


def get_for_user(
    request: HttpRequest, source: type[M] | models.QuerySet[M], pk: Any, need: str = "view"
) -> M:
    """The row ``pk`` of ``source`` (a model or a queryset) if the user holds ``need``.

    403 without the permission, 404 without the row. The permission is checked first, so a
    user without it cannot tell an existing id from a missing one.
    """
    require(request, need)
    return get_object_or_404(source, pk=pk)
