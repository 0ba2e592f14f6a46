"""Request types shared by the HTML views."""

from __future__ import annotations

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    """A request after django-htmx's middleware, which adds ``request.htmx``."""

    htmx: HtmxDetails
