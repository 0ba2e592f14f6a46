"""The jobs pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clusterpanel.web.access import require


def jobs(request: HttpRequest) -> HttpResponse:
    """The jobs list (empty until the engine runs jobs)."""
    require(request, "view")
    return render(request, "jobs.html", {})
