"""Panel middleware: a Content-Security-Policy on every response; login required everywhere but
the login page, /healthz and the API (which authenticates on its own and answers 401/403 as
JSON); a plain "busy" page when SQLite's single writer slot stays taken; a 409 page for a refused
state change; a 413 for a body over the size limit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template.loader import render_to_string

from clusterpanel.errors import COLLISION, Conflict

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
        if request.path_info.startswith("/api/"):
            return None
        if isinstance(exception, Conflict):
            message = str(exception)
        elif isinstance(exception, IntegrityError):
            # A write that lost a race to another one: the same answer as the API's.
            message = COLLISION
        else:
            return None
        body = render_to_string("conflict.html", {"message": message}, request=request)
        return HttpResponse(body, status=409)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


class RequestSizeMiddleware:
    """A body larger than the panel takes is a 413 that says the limit, before anything reads it.

    Form and JSON bodies may have ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (2.5 MiB); multipart
    bodies carry uploaded files and may have ``MAX_UPLOAD_BODY_SIZE``. A body whose length is not
    announced is still cut by Django at the same limits (``RequestDataTooBig``), which is answered
    the same way here for pages and by the API's error handler for the API.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit = body_limit(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return too_large(request, limit)
        if request.method == "POST" and not request.path_info.startswith("/api/"):
            # Pages read their form before any view runs (the CSRF check does): read it here,
            # where a body over the limit can still be answered with a 413.
            try:
                request.POST  # noqa: B018
            except RequestDataTooBig:
                # The form fields alone (not the files) went over the form limit.
                return too_large(request, int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
        response: HttpResponseBase = self.get_response(request)
        return response


def body_limit(request: HttpRequest) -> int:
    """The largest body the request may have, by its content type."""
    if request.content_type == "multipart/form-data":
        return int(settings.MAX_UPLOAD_BODY_SIZE)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large_message(limit: int) -> str:
    return f"The request body is larger than {_mib(limit)}, the most the panel accepts."


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = too_large_message(limit)
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message, "errors": {}}, status=413)
    body = render_to_string("request_too_large.html", {"message": message}, request=request)
    return HttpResponse(body, status=413)
