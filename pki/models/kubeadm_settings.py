"""A cluster's kubeadm settings: extra arguments per component and the audit policy."""

from __future__ import annotations

from django.core.validators import MaxLengthValidator
from django.db import models

from clusterpanel.validators import ListLimit
from pki.domain.audit_policy import DEFAULT_AUDIT_POLICY, MAX_POLICY_LENGTH
from pki.domain.kubeadm_config import MAX_EXTRA_ARGS

__all__ = ["ClusterKubeadmSettings", "default_audit_policy"]


def default_audit_policy() -> str:
    return DEFAULT_AUDIT_POLICY


_ARGS = [ListLimit(MAX_EXTRA_ARGS)]


class ClusterKubeadmSettings(models.Model):
    """Cluster-level kubeadm settings that the inventory does not hold.

    Extra arguments are maps of flag name (without dashes) to value, validated by
    ``pki.domain.kubeadm_config.validate_extra_args``; the renderer turns them into v1beta3 maps or
    v1beta4 ``{name, value}`` lists.
    """

    cluster = models.OneToOneField(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="kubeadm_settings"
    )
    apiserver_extra_args = models.JSONField(default=dict, blank=True, validators=_ARGS)
    controller_manager_extra_args = models.JSONField(default=dict, blank=True, validators=_ARGS)
    scheduler_extra_args = models.JSONField(default=dict, blank=True, validators=_ARGS)
    etcd_extra_args = models.JSONField(default=dict, blank=True, validators=_ARGS)
    kubelet_extra_args = models.JSONField(default=dict, blank=True, validators=_ARGS)
    audit_enabled = models.BooleanField(default=True)
    audit_policy = models.TextField(
        default=default_audit_policy,
        max_length=MAX_POLICY_LENGTH,
        validators=[MaxLengthValidator(MAX_POLICY_LENGTH)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "cluster kubeadm settings"

    def __str__(self) -> str:
        return f"kubeadm settings of {self.cluster}"
