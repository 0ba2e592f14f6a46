"""Webhook bodies and their signature (no Django).

The body is canonical JSON (sorted keys, no spaces) so that every attempt of a delivery sends the
same bytes; the signature is GitHub's scheme: ``sha256=`` and the hex HMAC-SHA256 of the body
under the cluster's webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "X-Clusterpanel-Signature"


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, data: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def verify(secret: str, data: bytes, header: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(signature(secret, data), header)
