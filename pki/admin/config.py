"""Admin for a cluster's static tokens, kubeadm and binary-install settings; token values never
appear here."""

from __future__ import annotations

from django.contrib import admin

from pki.admin.bootstrap import ReadOnlyAdmin
from pki.models.binary_settings import ClusterBinarySettings
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.models.tokens import StaticToken


@admin.register(StaticToken)
class StaticTokenAdmin(ReadOnlyAdmin):
    list_display = ["user", "uid", "cluster", "created_at"]
    list_filter = ["cluster"]
    search_fields = ["user", "uid"]
    exclude = ["token"]
    readonly_fields = ["cluster", "user", "uid", "groups", "created_at"]


@admin.register(ClusterKubeadmSettings)
class ClusterKubeadmSettingsAdmin(ReadOnlyAdmin):
    list_display = ["cluster", "audit_enabled", "updated_at"]
    readonly_fields = [
        "cluster",
        "apiserver_extra_args",
        "controller_manager_extra_args",
        "scheduler_extra_args",
        "etcd_extra_args",
        "kubelet_extra_args",
        "audit_enabled",
        "audit_policy",
        "updated_at",
    ]


@admin.register(ClusterBinarySettings)
class ClusterBinarySettingsAdmin(ReadOnlyAdmin):
    list_display = ["cluster", "install_prefix", "cert_dir", "kube_proxy_mode", "updated_at"]
    readonly_fields = [
        "cluster",
        "install_prefix",
        "cert_dir",
        "config_dir",
        "service_user",
        "etcd_data_dir",
        "signing_profiles",
        "kube_proxy_mode",
        "ipvs_scheduler",
        "service_node_port_range",
        "updated_at",
    ]
