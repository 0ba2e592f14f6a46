"""Alert targets: a webhook URL and e-mail recipients (no Django)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

# Deliberately plain: one @, no spaces, a dotted or single-label domain. SMTP refuses the rest.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
MAX_RECIPIENTS = 20


def webhook_url(value: str) -> str:
    """An http or https URL with a host; loopback is allowed (a local relay is common)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the webhook URL has no host")
    if parts.username or parts.password:
        # The URL is shown on pages and recorded with each delivery: credentials would leak.
        raise ValueError("the webhook URL must not carry a user or password; use the secret")
    if any(ch.isspace() for ch in value):
        raise ValueError("the webhook URL must not contain spaces")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValueError("the webhook URL has an invalid port") from None
    return value


def email_recipients(value: Any) -> list[str]:
    """A list of at most MAX_RECIPIENTS distinct plain addresses."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("e-mail recipients must be a list of addresses")
    if len(value) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} e-mail recipients")
    for item in value:
        if len(item) > 254 or not _EMAIL.match(item):
            raise ValueError(f"{item!r} is not an e-mail address")
    if len(set(value)) != len(value):
        raise ValueError("an e-mail recipient is listed twice")
    return list(value)


def split_recipients(text: str) -> list[str]:
    """Addresses from a form's text: separated by commas, semicolons, spaces or lines."""
    return [item for item in re.split(r"[\s,;]+", text.strip()) if item]
