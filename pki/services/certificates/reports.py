"""Inspecting stored and uploaded certificates with ``pki.domain.inspect``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from pki.domain import inspect as inspect_mod
from pki.domain.x509 import (
    PKIError,
)
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
)
from pki.services.certificates.errors import PKIInputError


def inspect_stored(row: Certificate | CertificateAuthority) -> dict[str, Any]:
    """Everything ``pki.domain.inspect`` reports about a stored certificate."""
    return inspect_mod.inspect_certificate(row.certificate, timezone.now())


def inspect_upload(data: bytes) -> list[dict[str, Any]]:
    """Inspect every certificate of an uploaded PEM/DER (PKIInputError on ``pem``)."""
    try:
        return inspect_mod.inspect_pem(data)
    except PKIError as exc:
        raise PKIInputError(str(exc), "pem") from None
