"""REST routes (included under /api/v1/ by clusterpanel/api/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
