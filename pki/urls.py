"""HTML routes (included at the site root by clusterpanel/urls.py)."""

from __future__ import annotations

from django.urls import path

from pki import views

urlpatterns = [
    path("clusters/<int:pk>/certificates/", views.certificates, name="pki_certificates"),
    path("clusters/<int:pk>/certificates/issue/", views.issue, name="pki_issue"),
    path("clusters/<int:pk>/certificates/reissue/", views.reissue, name="pki_reissue"),
    path("clusters/<int:pk>/certificates/renew/", views.renew, name="pki_renew"),
    path("clusters/<int:pk>/certificates/check-san/", views.check_san, name="pki_check_san"),
    path(
        "clusters/<int:pk>/certificates/kubeconfig/",
        views.user_kubeconfig,
        name="pki_user_kubeconfig",
    ),
    path("clusters/<int:pk>/authorities/", views.authorities, name="pki_authorities"),
    path("clusters/<int:pk>/authorities/import/", views.import_pki, name="pki_import"),
    path("certificates/<int:pk>/inspect/", views.inspect_certificate, name="pki_inspect"),
    path("pki/inspect/", views.inspect_upload, name="pki_inspect_upload"),
]
