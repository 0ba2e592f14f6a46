"""Download responses: one shape for every file the panel hands out."""

from __future__ import annotations

from django.http import HttpResponse


def download(
    content: str | bytes, filename: str, content_type: str = "application/yaml"
) -> HttpResponse:
    """An attachment that no cache keeps (downloads often hold secrets).

    Text is sent as UTF-8; bytes (archives) as they are.
    """
    if isinstance(content, str):
        content_type = f"{content_type}; charset=utf-8"
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
