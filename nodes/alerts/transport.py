"""Sending one alert: a signed JSON POST or an e-mail. Each raises ``DeliveryError`` on failure."""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from nodes.alerts import signing, webhook_guard


class DeliveryError(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET somewhere else; the receiver must answer itself.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _pinned(base: type[http.client.HTTPConnection], address: str) -> Any:
    """``base`` connecting to ``address`` whatever its host name resolves to now; the name still
    goes into the Host header, TLS's server name and the certificate check."""

    class Pinned(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

            def connect(where: tuple[str, int], *rest: Any, **options: Any) -> socket.socket:
                return socket.create_connection((address, where[1]), *rest, **options)

            self._create_connection = connect

    return Pinned


class _PinnedHTTP(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self._connection = _pinned(http.client.HTTPConnection, address)

    def http_open(self, req: Any) -> Any:
        return self.do_open(self._connection, req)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self._connection = _pinned(http.client.HTTPSConnection, address)

    def https_open(self, req: Any) -> Any:
        context = getattr(self, "_context", None)
        return self.do_open(self._connection, req, context=context)


def _opener(address: str | None) -> urllib.request.OpenerDirector:
    # No proxy from the environment: the proxy would resolve the name again, and reach anything.
    handlers: list[Any] = [urllib.request.ProxyHandler({}), _NoRedirects]
    if address is not None:
        handlers += [_PinnedHTTP(address), _PinnedHTTPS(address)]
    return urllib.request.build_opener(*handlers)


def post_webhook(url: str, secret: str, data: bytes, headers: dict[str, str]) -> str:
    """POST ``data``; the answer's status line when it is a 2xx."""
    # Checked again here, not only when saved: urllib would also open file: and ftp: URLs, and
    # the name may resolve elsewhere by now.
    try:
        pinned = webhook_guard.addresses(url)
    except ValueError as error:
        raise DeliveryError(str(error)) from None
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310 - http(s) only
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "clusterpanel-alerts")
    if secret:
        request.add_header(signing.SIGNATURE_HEADER, signing.signature(secret, data))
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with _opener(pinned[0] if pinned else None).open(
            request, timeout=settings.CLUSTERPANEL_ALERT_TIMEOUT
        ) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"{type(error).__name__}: {reason}"[:500]) from None


def send_email(recipients: list[str], subject: str, text: str) -> str:
    try:
        sent = send_mail(
            subject, text, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False
        )
    except (OSError, ValueError) as error:  # smtplib's errors are OSErrors
        raise DeliveryError(f"{type(error).__name__}: {error}"[:500]) from None
    if not sent:
        raise DeliveryError("the mail backend sent nothing")
    return f"sent to {len(recipients)} recipient(s)"
