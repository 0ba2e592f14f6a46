"""Alert targets: a webhook URL and e-mail recipients (no Django)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

# Deliberately plain: one @, no spaces, a dotted or single-label domain. SMTP refuses the rest.
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
MAX_RECIPIENTS = 20


def webhook_url(value: str) -> str:
    """An http or https URL with a host, without credentials. Where its host may point is
    decided apart (``refused_kind``), with the addresses it resolves to."""
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


# Well-known cloud metadata endpoints that are not covered by the private and link-local ranges
# (AWS's IPv6 one is in fd00::/8; Alibaba's sits in the shared 100.64.0.0/10 range).
METADATA = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})


def refused_kind(address: str) -> str | None:
    """Why the panel must not POST to ``address`` (an IP literal), or None for a public one:
    loopback, link-local, private, metadata and every other range not routed on the Internet
    (an operator must not make the panel reach internal services)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if str(ip) in METADATA:
        return "metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if not ip.is_global or ip.is_multicast:
        return "non-public"
    return None


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def allowed_hosts(text: str) -> frozenset[str]:
    """``"hooks.internal, 10.0.0.5"``: hosts a webhook may reach whatever they resolve to."""
    return frozenset(item.strip().lower().strip("[]") for item in text.split(",") if item.strip())
