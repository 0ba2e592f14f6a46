"""Login required everywhere but the login page, /healthz and the API.

The API authenticates on its own (tokens or session) and answers 401/403 as
JSON instead of redirecting to a login form.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponseBase


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
