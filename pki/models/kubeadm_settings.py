"""A cluster's kubeadm settings: extra arguments per component and the audit policy."""

from __future__ import annotations

from django.db import models

from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY

__all__ = ["ClusterKubeadmSettings", "default_audit_policy"]


def default_audit_policy() -> str:
    return DEFAULT_AUDIT_POLICY


class ClusterKubeadmSettings(models.Model):
    """Cluster-level kubeadm settings that the inventory does not hold.

    Extra arguments are maps of flag name (without dashes) to value, validated by
    ``pki.domain.kubeadm_config.validate_extra_args``; the renderer turns them into v1beta3 maps or
    v1beta4 ``{name, value}`` lists.
    """

    cluster = models.OneToOneField(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="kubeadm_settings"
    )
    apiserver_extra_args = models.JSONField(default=dict, blank=True)
    controller_manager_extra_args = models.JSONField(default=dict, blank=True)
    scheduler_extra_args = models.JSONField(default=dict, blank=True)
    etcd_extra_args = models.JSONField(default=dict, blank=True)
    kubelet_extra_args = models.JSONField(default=dict, blank=True)
    audit_enabled = models.BooleanField(default=True)
    audit_policy = models.TextField(default=default_audit_policy)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "cluster kubeadm settings"

    def __str__(self) -> str:
        return f"kubeadm settings of {self.cluster}"
