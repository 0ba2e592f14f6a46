"""The /api/v1/ root. Each app brings its own routes; the platform imports none of them."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import APIRootView

# The browsable root lists the inventory's collections, as a DefaultRouter would.
ROOT_LINKS = {"clusters": "cluster-list", "nodes": "node-list", "jobs": "job-list"}

urlpatterns = [
    path("", APIRootView.as_view(api_root_dict=ROOT_LINKS), name="api-root"),
    path("", include("nodes.api.fleet_urls")),
    path("", include("pki.api.urls")),
    path("", include("nodes.api.urls")),
    path("", include("clusterpanel.jobs.api")),
]
