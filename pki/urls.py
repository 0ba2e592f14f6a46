"""HTML routes (included at the site root by clusterpanel/urls.py)."""

from __future__ import annotations

from django.urls import path

from pki.views import (
    binary_files,
    binary_import,
    binary_settings,
    bootstrap,
    certificates,
    config,
)

urlpatterns = [
    path("clusters/<int:pk>/certificates/", certificates.certificates, name="pki_certificates"),
    path("clusters/<int:pk>/certificates/issue/", certificates.issue, name="pki_issue"),
    path("clusters/<int:pk>/certificates/reissue/", certificates.reissue, name="pki_reissue"),
    path("clusters/<int:pk>/certificates/renew/", certificates.renew, name="pki_renew"),
    path("clusters/<int:pk>/certificates/check-san/", certificates.check_san, name="pki_check_san"),
    path(
        "clusters/<int:pk>/certificates/bundle/<int:node_pk>/",
        certificates.node_bundle,
        name="pki_bundle",
    ),
    path(
        "clusters/<int:pk>/certificates/kubeconfig/",
        certificates.user_kubeconfig,
        name="pki_user_kubeconfig",
    ),
    path("clusters/<int:pk>/authorities/", certificates.authorities, name="pki_authorities"),
    path("clusters/<int:pk>/authorities/import/", certificates.import_pki, name="pki_import"),
    path(
        "clusters/<int:pk>/certificates/binary-import/",
        binary_import.binary_import,
        name="pki_binary_import",
    ),
    path("certificates/<int:pk>/inspect/", certificates.inspect_certificate, name="pki_inspect"),
    path("pki/inspect/", certificates.inspect_upload, name="pki_inspect_upload"),
    path("clusters/<int:pk>/join/", bootstrap.join_card, name="join_card"),
    path("clusters/<int:pk>/join/new-token/", bootstrap.join_card_new_token, name="join_new_token"),
    path("clusters/<int:pk>/join/reveal/", bootstrap.join_reveal, name="join_reveal"),
    path("clusters/<int:pk>/tokens/", bootstrap.token_list, name="token_list"),
    path("tokens/<int:pk>/reveal/", bootstrap.token_reveal, name="token_reveal"),
    path("tokens/<int:pk>/revoke/", bootstrap.token_revoke, name="token_revoke"),
    path("clusters/<int:pk>/config/", config.config_page, name="config_page"),
    path(
        "clusters/<int:pk>/binary-settings/",
        binary_settings.binary_settings_page,
        name="binary_settings",
    ),
    path("clusters/<int:pk>/config/settings/", config.config_settings, name="config_settings"),
    path("clusters/<int:pk>/config/nodes/<int:node_pk>/", config.node_config, name="config_node"),
    path(
        "clusters/<int:pk>/config/nodes/<int:node_pk>/files/",
        binary_files.node_files,
        name="config_binary_files",
    ),
    path(
        "clusters/<int:pk>/config/nodes/<int:node_pk>/files/<str:name>",
        binary_files.node_file_download,
        name="config_binary_file",
    ),
    path(
        "clusters/<int:pk>/config/audit-policy.yaml",
        config.audit_policy_download,
        name="config_audit_policy",
    ),
    path(
        "clusters/<int:pk>/config/loadbalancer/<str:kind>/",
        config.load_balancer_download,
        name="config_loadbalancer",
    ),
    path(
        "clusters/<int:pk>/config/certificate-key/",
        config.certificate_key_create,
        name="config_certificate_key",
    ),
    path(
        "clusters/<int:pk>/config/kubeadm-certs.yaml",
        config.kubeadm_certs_download,
        name="config_kubeadm_certs",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/add/",
        config.static_token_add,
        name="static_token_add",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/import/",
        config.static_token_import,
        name="static_token_import",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/<int:token_pk>/delete/",
        config.static_token_delete,
        name="static_token_delete",
    ),
    path("clusters/<int:pk>/config/tokens.csv", config.static_token_file, name="static_token_file"),
]
