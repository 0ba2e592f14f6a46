"""REST routes (included under /api/v1/ by clusterpanel/api/urls.py)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from pki.api.views import binary_import, bootstrap, certificates, config

router = SimpleRouter()
router.register("certificates", certificates.CertificateViewSet, basename="certificate")
router.register("tokens", bootstrap.BootstrapTokenViewSet, basename="bootstrap-token")
router.register("static-tokens", config.StaticTokenViewSet, basename="static-token")

_c = "clusters/<int:pk>/"
urlpatterns = [
    path(f"{_c}certificates/issue/", certificates.IssueView.as_view(), name="api-pki-issue"),
    path(
        f"{_c}certificates/coverage/", certificates.CoverageView.as_view(), name="api-pki-coverage"
    ),
    path(f"{_c}certificates/reissue/", certificates.ReissueView.as_view(), name="api-pki-reissue"),
    path(f"{_c}certificates/renew/", certificates.RenewView.as_view(), name="api-pki-renew"),
    path(
        f"{_c}certificates/check-san/",
        certificates.SanCheckView.as_view(),
        name="api-pki-check-san",
    ),
    path(
        f"{_c}certificates/endpoints/",
        certificates.EndpointCheckView.as_view(),
        name="api-pki-endpoints",
    ),
    path(
        f"{_c}certificates/expiration/",
        certificates.ExpirationView.as_view(),
        name="api-pki-expiration",
    ),
    path(f"{_c}authorities/", certificates.AuthorityListView.as_view(), name="api-pki-authorities"),
    path(f"{_c}bundle/", certificates.BundleView.as_view(), name="api-pki-bundle"),
    path(f"{_c}kubeconfigs/", certificates.KubeconfigView.as_view(), name="api-pki-kubeconfigs"),
    path(
        f"{_c}import/kubeadm/",
        certificates.KubeadmImportView.as_view(),
        name="api-pki-import-kubeadm",
    ),
    path(
        f"{_c}import/cfssl-ca/",
        certificates.CfsslCAImportView.as_view(),
        name="api-pki-import-cfssl-ca",
    ),
    path(
        f"{_c}import/cfssl-csr/",
        certificates.CfsslCsrCAView.as_view(),
        name="api-pki-import-cfssl-csr",
    ),
    path(
        f"{_c}binary-import/",
        binary_import.BinaryImportView.as_view(),
        name="api-pki-binary-import",
    ),
    path(f"{_c}cfssl/sign/", certificates.CfsslSignView.as_view(), name="api-pki-cfssl-sign"),
    path("pki/inspect/", certificates.InspectView.as_view(), name="api-pki-inspect"),
    path(
        "clusters/<int:pk>/join-command/",
        bootstrap.JoinCommandView.as_view(),
        name="api-join-command",
    ),
    path(
        "clusters/<int:pk>/certificate-key/",
        bootstrap.CertificateKeyView.as_view(),
        name="api-certificate-key",
    ),
    path(
        "clusters/<int:pk>/kubeadm-config/",
        config.KubeadmConfigView.as_view(),
        name="api-kubeadm-config",
    ),
    path(
        "clusters/<int:pk>/kubeadm-certs/",
        config.KubeadmCertsView.as_view(),
        name="api-kubeadm-certs",
    ),
    path(
        "clusters/<int:pk>/kubeadm-settings/",
        config.KubeadmSettingsView.as_view(),
        name="api-kubeadm-settings",
    ),
    path(
        "clusters/<int:pk>/binary-settings/",
        config.BinarySettingsView.as_view(),
        name="api-binary-settings",
    ),
    path(
        "clusters/<int:pk>/loadbalancer/<str:kind>/",
        config.LoadBalancerView.as_view(),
        name="api-loadbalancer",
    ),
    path(
        "clusters/<int:pk>/static-tokens/import/",
        config.StaticTokenImportView.as_view(),
        name="api-static-token-import",
    ),
    path(
        "clusters/<int:pk>/tokens.csv",
        config.StaticTokenFileView.as_view(),
        name="api-static-token-file",
    ),
    *router.urls,
]
