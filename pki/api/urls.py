"""REST routes (included under /api/v1/ by clusterpanel/api/urls.py)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from pki.api import views

router = SimpleRouter()
router.register("certificates", views.CertificateViewSet, basename="certificate")

_c = "clusters/<int:pk>/"
urlpatterns = [
    path(f"{_c}certificates/issue/", views.IssueView.as_view(), name="api-pki-issue"),
    path(f"{_c}certificates/coverage/", views.CoverageView.as_view(), name="api-pki-coverage"),
    path(f"{_c}certificates/reissue/", views.ReissueView.as_view(), name="api-pki-reissue"),
    path(f"{_c}certificates/renew/", views.RenewView.as_view(), name="api-pki-renew"),
    path(f"{_c}certificates/check-san/", views.SanCheckView.as_view(), name="api-pki-check-san"),
    path(
        f"{_c}certificates/endpoints/",
        views.EndpointCheckView.as_view(),
        name="api-pki-endpoints",
    ),
    path(
        f"{_c}certificates/expiration/",
        views.ExpirationView.as_view(),
        name="api-pki-expiration",
    ),
    path(f"{_c}authorities/", views.AuthorityListView.as_view(), name="api-pki-authorities"),
    path(f"{_c}bundle/", views.BundleView.as_view(), name="api-pki-bundle"),
    path(f"{_c}kubeconfigs/", views.KubeconfigView.as_view(), name="api-pki-kubeconfigs"),
    path(
        f"{_c}import/kubeadm/",
        views.KubeadmImportView.as_view(),
        name="api-pki-import-kubeadm",
    ),
    path(
        f"{_c}import/cfssl-ca/",
        views.CfsslCAImportView.as_view(),
        name="api-pki-import-cfssl-ca",
    ),
    path(
        f"{_c}import/cfssl-csr/",
        views.CfsslCsrCAView.as_view(),
        name="api-pki-import-cfssl-csr",
    ),
    path(f"{_c}cfssl/sign/", views.CfsslSignView.as_view(), name="api-pki-cfssl-sign"),
    path("pki/inspect/", views.InspectView.as_view(), name="api-pki-inspect"),
    *router.urls,
]
