"""HTML routes (included at the site root by clusterpanel/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
