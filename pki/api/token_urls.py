"""REST routes (included under /api/v1/ by clusterpanel/api/urls.py)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from pki.api import token_views

router = SimpleRouter()
router.register("tokens", token_views.BootstrapTokenViewSet, basename="bootstrap-token")
router.register("static-tokens", token_views.StaticTokenViewSet, basename="static-token")

urlpatterns = [
    path(
        "clusters/<int:pk>/join-command/",
        token_views.JoinCommandView.as_view(),
        name="api-join-command",
    ),
    path(
        "clusters/<int:pk>/kubeadm-config/",
        token_views.KubeadmConfigView.as_view(),
        name="api-kubeadm-config",
    ),
    path(
        "clusters/<int:pk>/kubeadm-certs/",
        token_views.KubeadmCertsView.as_view(),
        name="api-kubeadm-certs",
    ),
    path(
        "clusters/<int:pk>/kubeadm-settings/",
        token_views.KubeadmSettingsView.as_view(),
        name="api-kubeadm-settings",
    ),
    path(
        "clusters/<int:pk>/loadbalancer/<str:kind>/",
        token_views.LoadBalancerView.as_view(),
        name="api-loadbalancer",
    ),
    path(
        "clusters/<int:pk>/static-tokens/import/",
        token_views.StaticTokenImportView.as_view(),
        name="api-static-token-import",
    ),
    path(
        "clusters/<int:pk>/tokens.csv",
        token_views.StaticTokenFileView.as_view(),
        name="api-static-token-file",
    ),
    *router.urls,
]
