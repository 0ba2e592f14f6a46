"""API serializers for the PKI. No serializer here has a private-key field."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clusterpanel.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictModelSerializer,
)
from clusterpanel.api.params import MAX_ID
from nodes.rules import validation
from nodes.rules.validation import MAX_VALIDITY_DAYS
from pki.domain import principals
from pki.models.certificates import CAName, Certificate, CertificateAuthority


class _ExpiryMixin(serializers.Serializer):  # type: ignore[type-arg]
    # Plain text rather than a choice field: "status" names other choice sets elsewhere in the
    # API, and one enum per name keeps the OpenAPI document unambiguous.
    status = serializers.CharField(read_only=True)
    days_left = serializers.SerializerMethodField()
    band = serializers.SerializerMethodField()

    def get_days_left(self, obj: Any) -> int:
        return int(obj.days_left())

    def get_band(self, obj: Any) -> str:
        return str(obj.band)


class CertificateSerializer(_ExpiryMixin, StrictModelSerializer):  # type: ignore[type-arg]
    authority_name = serializers.CharField(source="authority.name", read_only=True)

    class Meta:
        model = Certificate
        fields = [
            "id",
            "cluster",
            "node",
            "node_name",
            "name",
            "kind",
            "common_name",
            "organizations",
            "dns_names",
            "ip_addresses",
            "usages",
            "serial",
            "not_before",
            "not_after",
            "days_left",
            "band",
            "fingerprint_sha256",
            "spki_sha256",
            "issuer",
            "authority",
            "authority_name",
            "status",
            "status_changed_at",
            "superseded_by",
            "created_at",
        ]
        read_only_fields = fields


class AuthoritySerializer(_ExpiryMixin, StrictModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = CertificateAuthority
        fields = [
            "id",
            "cluster",
            "name",
            "source",
            "status",
            "common_name",
            "serial",
            "not_before",
            "not_after",
            "days_left",
            "band",
            "fingerprint_sha256",
            "spki_sha256",
            "created_at",
        ]
        read_only_fields = fields


class CertificateIdsSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Optional list of certificate ids; absent means "all that apply"."""

    certificates = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID),
        max_length=1000,
        required=False,
        allow_empty=False,
    )


class RenewSerializer(CertificateIdsSerializer):
    reuse_key = StrictBooleanField(default=False)
    validity_days = StrictIntegerField(min_value=1, max_value=MAX_VALIDITY_DAYS, required=False)


class SanCheckSerializer(serializers.Serializer):  # type: ignore[type-arg]
    host = StrictCharField(max_length=253, trim_whitespace=True)
    certificate = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False)

    def validate_host(self, value: str) -> str:
        try:
            return validation.host(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class KubeconfigSerializer(serializers.Serializer):  # type: ignore[type-arg]
    username = StrictCharField(max_length=principals.MAX_USER_NAME)
    groups = serializers.ListField(
        child=StrictCharField(max_length=principals.MAX_GROUP_NAME),
        required=False,
        default=list,
        max_length=32,
    )
    validity = StrictIntegerField(
        min_value=1,
        max_value=MAX_VALIDITY_DAYS,
        required=False,
        help_text="Days; default the cluster's.",
    )


class CAChoiceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = StrictChoiceField(choices=CAName.choices, default=CAName.CA)


class CfsslSignSerializer(serializers.Serializer):  # type: ignore[type-arg]
    profile = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    authority = StrictChoiceField(choices=CAName.choices, default=CAName.CA)
