"""API serializer of a binary install's layout settings (``/clusters/{id}/binary-settings/``).

Validation is ``pki.services.binary_settings.validate``, so the API and the page give the same
messages; ``ca_config`` (write-only) is an existing cfssl ``ca-config.json`` whose signing
profiles replace the stored ones.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from clusterpanel.api.errors import as_validation_error
from clusterpanel.api.fields import StrictCharField, StrictModelSerializer
from clusterpanel.errors import InputError
from pki.domain import binary_rules
from pki.models.binary_settings import ClusterBinarySettings
from pki.services import binary_settings


class BinarySettingsSerializer(StrictModelSerializer):  # type: ignore[type-arg]
    """Directories, the service user, kube-proxy's mode and the cfssl signing profiles.

    ``updated_at`` is null while the cluster still has the defaults (never saved)."""

    ca_config = StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=binary_rules.MAX_CA_CONFIG,
        help_text="An existing cfssl ca-config.json; its signing.profiles replace the stored ones.",
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ClusterBinarySettings
        fields = [*binary_settings.FIELDS, "ca_config", "updated_at"]
        read_only_fields = ["updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Checked here for the 400; ``binary_settings.update`` normalises (and checks again).
        try:
            binary_settings.validate(attrs)
        except InputError as error:
            raise as_validation_error(error) from None
        return attrs
