"""Sending one alert: a signed JSON POST or an e-mail. Each raises ``DeliveryError`` on failure."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from nodes.alerts import signing
from nodes.rules import alert_targets


class DeliveryError(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET somewhere else; the receiver must answer itself.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, secret: str, data: bytes, headers: dict[str, str]) -> str:
    """POST ``data``; the answer's status line when it is a 2xx."""
    # Checked again here, not only in the form: urllib would also open file: and ftp: URLs.
    try:
        alert_targets.webhook_url(url)
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
        with _opener.open(request, timeout=settings.CLUSTERPANEL_ALERT_TIMEOUT) as response:
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
