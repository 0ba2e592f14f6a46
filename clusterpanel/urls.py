"""Top-level routes: pages, the admin, the REST API and its schema."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clusterpanel.jobs import views as job_views
from clusterpanel.web import healthz

admin.site.site_header = "clusterpanel administration"
admin.site.site_title = "clusterpanel"

urlpatterns = [
    path("healthz", healthz.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("jobs/", job_views.jobs, name="jobs"),
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
