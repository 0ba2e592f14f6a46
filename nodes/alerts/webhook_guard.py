"""Where a webhook may go: never to the panel's own host or its neighbours (SSRF).

A webhook URL whose host is, or resolves to, a loopback, link-local, private, metadata or other
non-public address is refused, unless the host is listed in
``CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS`` (a relay on the internal network the operator
means). It is checked when the URL is saved and again at each delivery, since DNS can change
in between; a delivery then connects to the very address it checked (no second lookup that a
rebinding name could answer differently) and uses no proxy from the environment.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from django.conf import settings

from nodes.rules import alert_targets


class Refused(ValueError):
    pass


class Unresolved(ValueError):
    pass


def _allowed() -> frozenset[str]:
    return alert_targets.allowed_hosts(str(settings.CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS))


def addresses(url: str) -> list[str] | None:
    """The addresses a delivery to ``url`` may connect to (None: an allowed host, connect as
    usual). ``ValueError`` for a malformed URL, ``Refused`` for a forbidden address,
    ``Unresolved`` when the name does not resolve."""
    alert_targets.webhook_url(url)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in _allowed():
        return None
    if alert_targets.is_address(host):
        found = [host]
    else:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise Unresolved(f"the webhook host {host} does not resolve: {error}") from None
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in found:
        kind = alert_targets.refused_kind(address)
        if kind is not None:
            shown = host if host == address else f"{host} ({address})"
            raise Refused(
                f"the webhook host {shown} is a {kind} address: the panel does not post to "
                "internal services unless the host is listed in "
                "CLUSTERPANEL_ALERT_WEBHOOK_ALLOWED_HOSTS"
            )
    return found


def check_for_saving(url: str) -> None:
    """The save-time check: as ``addresses``, except that a name that does not resolve yet is
    accepted (it reaches nothing now; each delivery checks it again)."""
    try:
        addresses(url)
    except Unresolved:
        return
