"""API serializers of the Configuration area: kubeadm settings and static tokens.

Validation is done by ``pki.services.bootstrap`` (which calls the pure modules), so the API and the
forms give the same messages. Static token values are write-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from clusterpanel.api.errors import as_validation_error
from clusterpanel.api.fields import StrictBooleanField, StrictCharField, StrictModelSerializer
from clusterpanel.errors import InputError
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.models.tokens import StaticToken
from pki.services import bootstrap as bootstrap_services

if TYPE_CHECKING:
    pass


class KubeadmSettingsSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    """Extra args per component (flag name without dashes → value) and the audit policy.

    ``updated_at`` is null while the cluster still has kubeadm's defaults (never saved)."""

    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ClusterKubeadmSettings
        fields = [
            "apiserver_extra_args",
            "controller_manager_extra_args",
            "scheduler_extra_args",
            "etcd_extra_args",
            "kubelet_extra_args",
            "audit_enabled",
            "audit_policy",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            return bootstrap_services.validate_settings(attrs)
        except InputError as error:
            raise as_validation_error(error) from None


class StaticTokenSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    """A row of the token file; the token is write-only."""

    token = StrictCharField(write_only=True, trim_whitespace=False)
    groups = serializers.ListField(child=StrictCharField(), required=False)
    uid = StrictCharField(required=False, allow_blank=True, default="")

    class Meta:
        model = StaticToken
        fields = ["id", "cluster", "token", "user", "uid", "groups", "created_at"]
        read_only_fields = ["id", "created_at"]


class StaticTokenImportSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """``csv``: the text of an existing token file; ``replace`` drops the stored entries."""

    csv = StrictCharField(trim_whitespace=False, allow_blank=True)
    replace = StrictBooleanField(required=False, default=False)
