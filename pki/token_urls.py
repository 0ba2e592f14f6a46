"""HTML routes (included at the site root by clusterpanel/urls.py)."""

from __future__ import annotations

from django.urls import path

from pki import token_views as views

urlpatterns = [
    path("clusters/<int:pk>/join/", views.join_card, name="join_card"),
    path("clusters/<int:pk>/join/new-token/", views.join_card_new_token, name="join_new_token"),
    path("clusters/<int:pk>/tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/reveal/", views.token_reveal, name="token_reveal"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("clusters/<int:pk>/config/", views.config_page, name="config_page"),
    path("clusters/<int:pk>/config/settings/", views.config_settings, name="config_settings"),
    path("clusters/<int:pk>/config/nodes/<int:node_pk>/", views.node_config, name="config_node"),
    path(
        "clusters/<int:pk>/config/audit-policy.yaml",
        views.audit_policy_download,
        name="config_audit_policy",
    ),
    path(
        "clusters/<int:pk>/config/loadbalancer/<str:kind>/",
        views.load_balancer_download,
        name="config_loadbalancer",
    ),
    path(
        "clusters/<int:pk>/config/kubeadm-certs.yaml",
        views.kubeadm_certs_download,
        name="config_kubeadm_certs",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/add/",
        views.static_token_add,
        name="static_token_add",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/import/",
        views.static_token_import,
        name="static_token_import",
    ),
    path(
        "clusters/<int:pk>/config/static-tokens/<int:token_pk>/delete/",
        views.static_token_delete,
        name="static_token_delete",
    ),
    path("clusters/<int:pk>/config/tokens.csv", views.static_token_file, name="static_token_file"),
]
