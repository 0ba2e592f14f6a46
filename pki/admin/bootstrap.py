"""Admin for bootstrap tokens, static tokens and certificate keys.

Secrets never appear here: the token secret, certificate keys and static token values are left
out of every form and list. Auditors see who created, revealed and revoked each token.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from clusterpanel.models import AuditEvent
from clusterpanel.web.panel_admin import PanelModelAdmin
from pki.models.tokens import (
    BootstrapToken,
    CertificateKey,
    TokenStatus,
)


class TokenStatusFilter(admin.SimpleListFilter):
    """Status is derived from the clock, so it is filtered by query, not by a column."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(TokenStatus.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in TokenStatus.values:
            return queryset.with_status(self.value())  # type: ignore[attr-defined]
        return queryset


class ReadOnlyAdmin(PanelModelAdmin):
    """Records of secrets are made through the panel (which audits), not edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BootstrapToken)
class BootstrapTokenAdmin(ReadOnlyAdmin):
    list_display = [
        "token_id",
        "cluster",
        "status_label",
        "expires_at",
        "description",
        "created_by",
        "revoked_at",
    ]
    list_filter = [TokenStatusFilter, "cluster"]
    search_fields = ["token_id", "description", "cluster__name"]
    exclude = ["secret"]
    readonly_fields = [
        "cluster",
        "token_id",
        "description",
        "usages",
        "groups",
        "ttl",
        "created_at",
        "expires_at",
        "created_by",
        "revoked_at",
        "revoked_by",
        "audit_trail",
    ]

    @admin.display(description="status")
    def status_label(self, obj: BootstrapToken) -> str:
        return obj.status()

    @admin.display(description="audit trail")
    def audit_trail(self, obj: BootstrapToken) -> str:
        """Every create, reveal, join command and revoke recorded for this token."""
        events = AuditEvent.objects.filter(
            object_type=obj._meta.label_lower, object_id=str(obj.pk)
        ).order_by("time")
        return (
            format_html_join(
                "\n",
                "<div>{} — {} by {}</div>",
                ((f"{e.time:%Y-%m-%d %H:%M:%S}", e.action, e.actor_name or "-") for e in events),
            )
            or "—"
        )


@admin.register(CertificateKey)
class CertificateKeyAdmin(ReadOnlyAdmin):
    list_display = ["pk", "cluster", "created_at", "expires_at", "created_by"]
    list_filter = ["cluster"]
    exclude = ["key"]
    readonly_fields = ["cluster", "created_at", "expires_at", "created_by"]
