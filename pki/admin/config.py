"""Admin for a cluster's static tokens and kubeadm settings; token values never appear here."""

from __future__ import annotations

from django.contrib import admin

from pki.admin.bootstrap import ReadOnlyAdmin
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
