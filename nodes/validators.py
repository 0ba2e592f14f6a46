"""Django validators wrapping ``nodes.validation`` so errors land on the right field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from nodes.rules import alert_targets, validation


@deconstructible
class _Check:
    """Runs ``nodes.validation.<name>`` and turns its ValueError into a field error.

    A class rather than a closure so that migrations can serialise it.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    # Not "invalid": Field.run_validators would replace our message with the
    # field's generic "invalid" text (JSONField's "Value must be valid JSON.").
    def __call__(self, value: Any) -> None:
        try:
            getattr(validation, self.name)(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="bad_value") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Check) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


validate_dns1123_label = _Check("dns1123_label")
validate_dns1123_subdomain = _Check("dns1123_subdomain")
validate_kubernetes_version = _Check("kubernetes_version")
validate_endpoint = _Check("split_endpoint")
validate_pod_subnet = _Check("pod_subnet")
validate_service_subnet = _Check("service_subnet")
validate_labels = _Check("labels")
validate_taints = _Check("taints")
validate_ssh_user = _Check("ssh_user")
validate_port = _Check("port")
validate_fingerprint = _Check("host_key_fingerprint")
validate_validity_days = _Check("validity_days")
validate_host = _Check("host")


def validate_sans(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("extra SANs must be a list of names or IP addresses")
    for item in value:
        try:
            validation.subject_alt_name(item)
        except ValueError as exc:
            raise ValidationError(str(exc), code="bad_value") from None


def validate_webhook_url(value: Any) -> None:
    try:
        alert_targets.webhook_url(str(value))
    except ValueError as exc:
        raise ValidationError(str(exc), code="bad_value") from None


def validate_email_recipients(value: Any) -> None:
    try:
        alert_targets.email_recipients(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="bad_value") from None
