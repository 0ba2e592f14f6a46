"""The cluster's stored kubeadm settings: extra args per component and the audit policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import services as inventory
from nodes.models import Cluster
from pki.domain import kubeadm_config
from pki.domain.audit_policy import AuditPolicyError, validate_audit_policy
from pki.models.kubeadm_settings import ClusterKubeadmSettings

EXTRA_ARG_COMPONENTS: tuple[str, ...] = (
    "apiserver_extra_args",
    "controller_manager_extra_args",
    "scheduler_extra_args",
    "etcd_extra_args",
    "kubelet_extra_args",
)


def settings_for(cluster: Cluster) -> ClusterKubeadmSettings:
    """The cluster's kubeadm settings; defaults (unsaved) when none were stored yet."""
    try:
        return cluster.kubeadm_settings
    except ClusterKubeadmSettings.DoesNotExist:
        return ClusterKubeadmSettings(cluster=cluster)


_SETTINGS_WHERE = {
    "apiserver_extra_args": "apiServer.extraArgs",
    "controller_manager_extra_args": "controllerManager.extraArgs",
    "scheduler_extra_args": "scheduler.extraArgs",
    "etcd_extra_args": "etcd.local.extraArgs",
    "kubelet_extra_args": "nodeRegistration.kubeletExtraArgs",
}


def validate_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check extra args (flag names ``[a-z0-9-]+``, single-line values) and the audit policy."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in EXTRA_ARG_COMPONENTS:
        if name not in values:
            continue
        try:
            cleaned[name] = kubeadm_config.validate_extra_args(
                values[name] or {}, _SETTINGS_WHERE[name]
            )
        except kubeadm_config.ConfigError as error:
            errors.setdefault(name, []).append(str(error))
    if "apiserver_extra_args" in cleaned:
        try:
            kubeadm_config.apiserver_bind_port(cleaned["apiserver_extra_args"])
        except kubeadm_config.ConfigError as error:
            errors.setdefault("apiserver_extra_args", []).append(str(error))
    if "audit_policy" in values:
        try:
            validate_audit_policy(values["audit_policy"])
            cleaned["audit_policy"] = values["audit_policy"]
        except AuditPolicyError as error:
            errors.setdefault("audit_policy", []).append(str(error))
    if "audit_enabled" in values:
        cleaned["audit_enabled"] = bool(values["audit_enabled"])
    if cleaned.get("audit_enabled", True):
        audit_flags = {"audit-policy-file", "audit-log-path"} | {
            f"audit-log-{suffix}" for suffix in ("maxage", "maxbackup", "maxsize")
        }
        clash = sorted(audit_flags & set(cleaned.get("apiserver_extra_args", {})))
        if clash:
            errors.setdefault("apiserver_extra_args", []).append(
                f"flag {clash[0]!r} is set by the audit log settings; turn audit off to set it"
            )
    if errors:
        raise InputError.many(errors)
    return cleaned


def save_settings(
    cluster: Cluster, values: Mapping[str, Any], *, actor: Actor
) -> ClusterKubeadmSettings:
    """Validate and store (all or nothing) the given settings; others keep their value.

    Recorded as ``kubeadm_settings.update`` with the names of the settings that changed.
    """
    cleaned = validate_settings(values)
    with transaction.atomic():
        # The stored row, read under the cluster's lock: a save racing the cluster's deletion is a
        # Conflict rather than a row for a cluster that is gone, and two first saves at once
        # insert one row.
        inventory.lock_cluster(cluster)
        stored = ClusterKubeadmSettings.objects.filter(cluster=cluster).first()
        current = stored or ClusterKubeadmSettings(cluster=cluster)
        changed = [name for name, value in cleaned.items() if getattr(current, name) != value]
        for name, value in cleaned.items():
            setattr(current, name, value)
        current.save(force_insert=stored is None, force_update=stored is not None)
        audit.record(
            "kubeadm_settings.update", actor, obj=cluster, details={"fields": sorted(changed)}
        )
    return current


def audit_policy_text(cluster: Cluster) -> str:
    return settings_for(cluster).audit_policy
