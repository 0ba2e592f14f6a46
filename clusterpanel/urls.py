"""Top-level routes: pages, the admin, the REST API and its schema."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clusterpanel.web import healthz

admin.site.site_header = "clusterpanel administration"
admin.site.site_title = "clusterpanel"

urlpatterns = [
    path("healthz", healthz.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("clusterpanel.jobs.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI with its start-up script served apart (?script): no inline script for the CSP.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html"),
        name="api-docs",
    ),
    path("api/v1/", include("clusterpanel.api.urls")),
    path("", include("nodes.urls")),
    path("", include("pki.urls")),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404s of URLs that match no route: the API's error shape under ``/api/`` (an id that is
    no number, say), the panel's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "errors": {}}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found
