"""Admin for the panel's own models. The audit log is read-only for everyone; heartbeats are
written by the workers only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from clusterpanel.models import ApiToken, AuditEvent, Job, JobLogChunk, JobStep, WorkerHeartbeat
from clusterpanel.security.api_tokens import revoke_api_token
from clusterpanel.security.audit import Actor
from clusterpanel.web.panel_admin import PanelModelAdmin, ReadOnlyPanelAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(PanelModelAdmin):
    list_display = [
        "time",
        "actor_name",
        "action",
        "object_type",
        "object_label",
        "cluster_name",
        "client_ip",
    ]
    list_filter = ["action", "object_type", "cluster_name", "time"]
    search_fields = [
        "actor_name",
        "action",
        "object_label",
        "object_id",
        "cluster_name",
        "client_ip",
    ]
    date_hierarchy = "time"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Revoke the selected tokens")
def revoke_tokens(modeladmin: Any, request: HttpRequest, queryset: Any) -> None:
    actor = Actor.from_request(request)
    count = sum(
        revoke_api_token(token, actor) for token in queryset.filter(revoked_at__isnull=True)
    )
    modeladmin.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(PanelModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["prefix", "user__username", "name"]
    # The hash is never shown; tokens are created with `manage.py issue_api_token`.
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    panel_managed_fields = ["user", "prefix", "created_at", "last_used_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if "revoked_at" in form.changed_data and obj.revoked_at is not None:
            obj.revoked_at = obj.revoked_at or timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(PanelModelAdmin):
    list_display = ["hostname", "seen_at"]
    search_fields = ["hostname"]
    list_filter = ["seen_at"]
    panel_managed_fields = ["hostname", "seen_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyPanelAdmin):
    list_display = ["id", "kind", "cluster_name", "status", "launched_by_name", "created_at"]
    list_filter = ["status", "kind", "mutating", "created_at"]
    search_fields = ["kind", "cluster_name", "launched_by_name", "explanation"]
    # Every staff role reads the admin; tracebacks are for admins, on the job's page.
    exclude = ["traceback"]


@admin.register(JobStep)
class JobStepAdmin(ReadOnlyPanelAdmin):
    list_display = ["job", "position", "phase", "name", "node_name", "status", "exit_code"]
    list_filter = ["status"]
    search_fields = ["phase", "name", "node_name"]


@admin.register(JobLogChunk)
class JobLogChunkAdmin(ReadOnlyPanelAdmin):
    list_display = ["job", "seq", "node_name", "stream", "created_at"]
    list_filter = ["stream"]
