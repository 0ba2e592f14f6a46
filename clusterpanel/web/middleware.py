"""Panel middleware: a Content-Security-Policy on every response; login required everywhere but
the login page, /healthz and the API (which authenticates on its own and answers 401/403 as
JSON); a plain "busy" page when SQLite's single writer slot stays taken; a 409 page for a refused
state change."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.loader import render_to_string

from clusterpanel.errors import Conflict

# The pages load nothing from elsewhere and run no inline script or style: scripts and styles
# are static files (static/js/panel.js, static/css/panel.css, htmx from django-htmx). Images
# may be data: URIs, as Swagger UI's stylesheet draws its icons with them.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Sets the panel's Content-Security-Policy on every response that has none."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class PanelLoginRequiredMiddleware(LoginRequiredMiddleware):
    open_prefixes = ("/api/", "/static/")

    def process_view(
        self,
        request: HttpRequest,
        view_func: Any,
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponseBase | None:
        if request.path_info.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class DatabaseBusyMiddleware:
    """On the embedded SQLite default one request writes at a time; one that waited 30 s
    in vain gets a 503 page asking to retry, instead of a server error."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError) and "locked" in str(exception):
            body = render_to_string("busy.html", request=request)
            response = HttpResponse(body, status=503)
            response["Retry-After"] = "5"
            return response
        return None


class ConflictMiddleware:
    """A ``Conflict`` a page did not handle (a row deleted while it was being edited) is a 409
    page that says what happened, not a server error."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Conflict) and not request.path_info.startswith("/api/"):
            body = render_to_string("conflict.html", {"message": str(exception)}, request=request)
            return HttpResponse(body, status=409)
        return None
