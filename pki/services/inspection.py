"""Inspecting stored and uploaded certificates with ``pki.inspect``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from pki import inspect as inspect_mod
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
)
from pki.services.errors import PKIInputError
from pki.x509 import (
    PKIError,
)


def inspect_stored(row: Certificate | CertificateAuthority) -> dict[str, Any]:
    """Everything ``pki.inspect`` reports about a stored certificate."""
    return inspect_mod.inspect_certificate(row.certificate, timezone.now())


def inspect_upload(data: bytes) -> list[dict[str, Any]]:
    """Inspect every certificate of an uploaded PEM/DER (PKIInputError on ``pem``)."""
    try:
        return inspect_mod.inspect_pem(data)
    except PKIError as exc:
        raise PKIInputError(str(exc), "pem") from None
