"""What every ModelAdmin of the panel shares: the panel's roles decide, every change is audited,
secrets never reach a page.

- Roles, not Django model permissions: staff users with the ``view`` role permission (every
  role) see every panel model read-only; adding, changing and deleting need ``edit_in_admin``
  (admins). A model admin narrows this further (read-only models return False).
- Every add, change and delete made here writes one audit event (``admin.add``,
  ``admin.change``, ``admin.delete``, via "admin") in the admin's own transaction, with the
  names of the changed fields, never their values.
- Encrypted fields (credentials, private keys, token secrets) are left out of every form, list
  and read-only view; fields that only the panel's own checks set (``panel_managed_fields``)
  are shown read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.http import HttpRequest

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from clusterpanel.security.fields import EncryptedTextField
from clusterpanel.security.roles import can


def secret_fields(model: type[models.Model]) -> list[str]:
    """The model's encrypted fields: what the admin never shows."""
    return [f.name for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]


def may_view(request: HttpRequest) -> bool:
    """Staff (the admin site's own condition) whose role reads the panel."""
    user = request.user
    return bool(user.is_active and user.is_staff and can(user, "view"))


def may_edit(request: HttpRequest) -> bool:
    return may_view(request) and can(request.user, "edit_in_admin")


class PanelModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The base of every ModelAdmin of the panel's apps (see the module docstring)."""

    # Fields only the panel's own checks and jobs set: shown, never edited here.
    panel_managed_fields: Sequence[str] = ()

    # --- who may do what ------------------------------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_view(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_edit(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_edit(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_edit(request)

    # --- what is shown --------------------------------------------------------------------------

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or ())
        return exclude + [name for name in secret_fields(self.model) if name not in exclude]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + [name for name in self.panel_managed_fields if name not in readonly]

    def get_list_display(self, request: HttpRequest) -> Any:
        hidden = set(secret_fields(self.model))
        return [name for name in super().get_list_display(request) if name not in hidden]

    # --- every write is audited -----------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            _record(request, "admin.change" if change else "admin.add", obj, form.changed_data)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            _record(request, "admin.delete", obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for obj in queryset:
                _record(request, "admin.delete", obj)
            super().delete_queryset(request, queryset)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        with transaction.atomic():
            for deleted in getattr(formset, "deleted_forms", ()):
                if deleted.instance.pk is not None:
                    _record(request, "admin.delete", deleted.instance)
            super().save_formset(request, form, formset, change)
            for obj in formset.new_objects:
                _record(request, "admin.add", obj)
            for obj, fields in formset.changed_objects:
                _record(request, "admin.change", obj, fields)


class PanelInline:
    """Mixin for the panel's inlines: read-only rows for whoever may view the parent."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_view(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _record(request: HttpRequest, action: str, obj: Any, fields: Sequence[str] = ()) -> None:
    """One event for one row: the field names only (values may be secrets)."""
    details = {"fields": sorted(fields)}
    audit.record(action, Actor.from_request(request), obj=obj, details=details)


class ReadOnlyPanelAdmin(PanelModelAdmin):
    """Records the panel writes (jobs, health checks, scans, deliveries, snapshots): readable by
    auditors, never added, edited or deleted by hand — a row changed here would no longer say
    what happened."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
