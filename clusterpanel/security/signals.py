"""Audit logins, failed logins and logouts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record("auth.login", Actor.from_request(request, user))


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("auth.logout", Actor.from_request(request, user))


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: Any, request: Any = None, **kwargs: Any) -> None:
    # Only the username: the password is never recorded.
    username = str(credentials.get("username", ""))[:150]
    actor = Actor.from_request(request) if request is not None else Actor(None, None, "web")
    audit.record("auth.login_failed", actor, details={"username": username})


# Django model permissions per role, kept in line with the roles for whatever reads them (the
# auth app's own admin for the admin group). The panel's ModelAdmins decide by role
# (clusterpanel.web.panel_admin), as the panel's pages do (clusterpanel.security.roles).
PANEL_APPS = ("clusterpanel", "nodes", "pki")


def grant_admin_site_permissions(sender: Any, **kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    panel = Permission.objects.filter(content_type__app_label__in=PANEL_APPS)
    view = panel.filter(codename__startswith="view_")
    for name in ("viewer", "operator"):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*view)
    admin_group, _ = Group.objects.get_or_create(name="admin")
    admin_group.permissions.add(*panel, *Permission.objects.filter(content_type__app_label="auth"))
