"""API serializers for bootstrap tokens, kubeadm settings and static tokens.

Validation is done by ``pki.services.bootstrap`` (which calls the pure modules), so the API and the
forms give the same messages. Secrets are write-only or shown once: the list and detail
representations of a token carry its id, never its secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusterpanel.api.errors import as_validation_error
from clusterpanel.api.fields import (
    StrictCharField,
    StrictModelSerializer,
    StrictPrimaryKeyRelatedField,
)
from clusterpanel.errors import InputError
from nodes.models import Cluster
from pki.models.tokens import BootstrapToken
from pki.services import bootstrap as bootstrap_services

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "example": "24h"})
class TtlField(serializers.Field):  # type: ignore[type-arg]
    """A TTL as a whole number of seconds or a Go duration (``24h``, ``1h30m``, ``0``)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise serializers.ValidationError("must be seconds (a number) or a duration like 24h")
        return data

    def to_representation(self, value: Any) -> int:
        return int(value.total_seconds())


class BootstrapTokenSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    """A token as lists and details show it: the id and metadata, never the secret."""

    status = serializers.SerializerMethodField()
    ttl = TtlField(read_only=True)
    # Null for tokens made by a command on the panel's host, or whose creator was deleted.
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    # Null until the token is revoked (and when the revoking user has been deleted).
    revoked_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = BootstrapToken
        fields = [
            "id",
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
            "status",
        ]
        read_only_fields = fields

    def get_status(self, token: BootstrapToken) -> str:
        return token.status(timezone.now())


class BootstrapTokenCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Input of ``POST /tokens/``. ``token`` lets an operator bring an ``id.secret`` of their own
    (as ``kubeadm token create <token>`` does); without it one is generated."""

    cluster = StrictPrimaryKeyRelatedField(queryset=Cluster.objects.all())
    ttl = TtlField(required=False)
    description = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    usages = serializers.ListField(child=StrictCharField(), required=False)
    groups = serializers.ListField(child=StrictCharField(), required=False)
    token = StrictCharField(required=False, write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["request"] = bootstrap_services.validate_token_request(
                ttl=attrs.get("ttl"),
                usages=attrs.get("usages"),
                groups=attrs.get("groups"),
                description=attrs.get("description", ""),
                token=attrs.get("token"),
            )
        except InputError as error:
            raise as_validation_error(error) from None
        return attrs
