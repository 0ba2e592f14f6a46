"""The /api/v1/ router. Each app registers its viewsets here."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from nodes.api.views import ClusterViewSet, NodeViewSet

router = DefaultRouter()
router.register("clusters", ClusterViewSet, basename="cluster")
router.register("nodes", NodeViewSet, basename="node")

urlpatterns = [
    path("", include("pki.api.urls")),
    *router.urls,
]
