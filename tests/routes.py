"""Every route of the panel, as a concrete path: for tests that must hold on all of them.

Path parameters become ``1`` (an id, a kind, a file name), so a route may answer 404 for a missing
row; what such a test checks (never a 500, a body limit, a parser) holds before any row is looked
up. The Django admin, the API schema and docs and static files are left out: they are Django's and
drf-spectacular's own pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

_SKIPPED_PREFIXES = ("admin/", "api/schema/", "api/docs/", "static/")


@dataclass(frozen=True)
class Route:
    path: str
    name: str | None
    view: Any

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


def _concrete(pattern: str) -> str:
    text = re.sub(r"\(\?P<\w+>[^)]*\)", "1", pattern)
    text = re.sub(r"<(?:\w+:)?\w+>", "1", text)
    return text.replace("^", "").replace("$", "").replace("\\", "")


def _walk(patterns: list[Any], prefix: str) -> Iterator[Route]:
    for entry in patterns:
        text = prefix + _concrete(str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, text)
        elif isinstance(entry, URLPattern):
            yield Route("/" + text, entry.name, entry.callback)


def all_routes() -> list[Route]:
    """Each route once, in the order Django matches them."""
    seen: dict[str, Route] = {}
    for route in _walk(get_resolver().url_patterns, ""):
        if route.path.lstrip("/").startswith(_SKIPPED_PREFIXES) or route.path in seen:
            continue
        seen[route.path] = route
    return list(seen.values())


def api_routes() -> list[Route]:
    return [route for route in all_routes() if route.is_api]


def page_routes() -> list[Route]:
    return [route for route in all_routes() if not route.is_api]
