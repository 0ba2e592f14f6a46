"""Admin for CAs, certificates and service-account keys: read-mostly, keys never shown."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from clusterpanel.web.panel_admin import PanelModelAdmin, may_view
from pki.domain import expiry
from pki.models.certificates import Certificate, CertificateAuthority, ServiceAccountKey

# The columns that hold key material; the admin never renders or edits them.
_KEY_FIELDS = ["private_key_pem"]


class BandFilter(admin.SimpleListFilter):
    """Expiry band (ok / warning / critical / expired), translated to not_after ranges."""

    title = "expiry band"
    parameter_name = "band"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(b, b) for b in (expiry.OK, expiry.WARNING, expiry.CRITICAL, expiry.EXPIRED)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        day = dt.timedelta(days=1)
        # days_left is floor((not_after - now) / 1 day); each band is a half-open range of it.
        ranges = {
            expiry.EXPIRED: (None, now),
            expiry.CRITICAL: (now, now + (expiry.CRITICAL_DAYS + 1) * day),
            expiry.WARNING: (
                now + (expiry.CRITICAL_DAYS + 1) * day,
                now + (expiry.WARNING_DAYS + 1) * day,
            ),
            expiry.OK: (now + (expiry.WARNING_DAYS + 1) * day, None),
        }
        band = self.value()
        if band is None or band not in ranges:
            return queryset
        low, high = ranges[band]
        if low is not None:
            queryset = queryset.filter(not_after__gte=low)
        if high is not None:
            queryset = queryset.filter(not_after__lt=high)
        return queryset


class _PanelRoleAdmin(PanelModelAdmin):
    """Read-only for every role (certificates are public; their keys are never shown).

    Rows change only through signing, renewal and imports, which keep the history and the audit
    trail; the admin is for looking, so it offers no add or change and deletes to superusers only.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(may_view(request) and request.user.is_superuser)


class _CertificateAdmin(_PanelRoleAdmin):
    exclude = _KEY_FIELDS
    ordering = ["not_after"]
    list_filter = [BandFilter, "status"]

    @admin.display(description="days left", ordering="not_after")
    def days_left(self, obj: Any) -> int:
        return int(obj.days_left())

    @admin.display(description="band")
    def band(self, obj: Any) -> str:
        return str(obj.band)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name not in _KEY_FIELDS]


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(_CertificateAdmin):
    list_display = [
        "name",
        "cluster",
        "common_name",
        "source",
        "status",
        "not_after",
        "days_left",
        "band",
        "fingerprint_sha256",
    ]
    list_filter = [BandFilter, "status", "name", "source", "cluster"]
    search_fields = ["common_name", "fingerprint_sha256", "spki_sha256", "cluster__name"]


@admin.register(Certificate)
class CertificateAdmin(_CertificateAdmin):
    list_display = [
        "name",
        "node_name",
        "cluster",
        "common_name",
        "kind",
        "status",
        "not_after",
        "days_left",
        "band",
    ]
    list_filter = [BandFilter, "status", "kind", "cluster"]
    # JSON lists are stored as text, so a substring search finds a SAN in them.
    search_fields = [
        "common_name",
        "name",
        "node_name",
        "dns_names",
        "ip_addresses",
        "fingerprint_sha256",
        "spki_sha256",
        "serial",
    ]


@admin.register(ServiceAccountKey)
class ServiceAccountKeyAdmin(_PanelRoleAdmin):
    list_display = ["cluster", "status", "created_at"]
    list_filter = ["status", "cluster"]
    exclude = _KEY_FIELDS
    readonly_fields = ["cluster", "public_key_pem", "status", "created_at"]
