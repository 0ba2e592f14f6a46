"""A binary-installed cluster's layout settings: directories, service user, kube-proxy and the
cfssl signing profiles, edited by the page and the API through ``update`` alone.

Values are checked by ``pki.domain.binary_rules``; every error names its field. ``ca_config`` is
the text of an existing cfssl ``ca-config.json`` whose ``signing.profiles`` replace the stored
profiles (errors name the JSON path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from clusterpanel.errors import InputError
from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes import services as inventory
from nodes.models import Cluster
from pki.domain import binary_rules
from pki.models.binary_settings import ClusterBinarySettings, KubeProxyMode
from pki.services.certificates.spec import binary_settings_of, is_binary

__all__ = ["FIELDS", "PATH_FIELDS", "settings_of", "update", "validate"]

PATH_FIELDS = ("install_prefix", "cert_dir", "config_dir", "etcd_data_dir")
FIELDS = (
    *PATH_FIELDS,
    "service_user",
    "signing_profiles",
    "kube_proxy_mode",
    "ipvs_scheduler",
    "service_node_port_range",
)
CA_CONFIG = "ca_config"


def settings_of(cluster: Cluster) -> ClusterBinarySettings:
    """The stored settings, or an unsaved row of the defaults."""
    return binary_settings_of(cluster)


def _one(name: str, value: Any) -> Any:
    if name in PATH_FIELDS:
        return binary_rules.path(value, name)
    if name == "service_user":
        return binary_rules.service_user(value)
    if name == "signing_profiles":
        return binary_rules.signing_profiles(value)
    if name == "kube_proxy_mode":
        if value not in KubeProxyMode.values:
            raise InputError(f"one of {', '.join(KubeProxyMode.values)}", name)
        return str(value)
    if name == "ipvs_scheduler":
        return binary_rules.ipvs_scheduler(value)
    return binary_rules.port_range(value)


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """The given settings checked and normalised (``InputError`` naming every bad field)."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name in FIELDS:
        if name not in values:
            continue
        try:
            cleaned[name] = _one(name, values[name])
        except InputError as error:
            errors.setdefault(name, []).append(str(error))
    text = values.get(CA_CONFIG)
    if text:
        if "signing_profiles" in values:
            errors.setdefault(CA_CONFIG, []).append(
                "give the signing profiles or a ca-config.json, not both"
            )
        else:
            try:
                cleaned["signing_profiles"] = binary_rules.profiles_from_ca_config(text)
            except InputError as error:
                errors.setdefault(CA_CONFIG, []).append(str(error))
    if errors:
        raise InputError.many(errors)
    return cleaned


def update(cluster: Cluster, values: Mapping[str, Any], *, actor: Actor) -> ClusterBinarySettings:
    """Validate and store (all or nothing) the given settings; the others keep their value.

    Only for binary installs (a kubeadm cluster's files are kubeadm's). Recorded as
    ``binary_settings.update`` with the names of the settings that changed and whether the
    profiles came from an imported ``ca-config.json``.
    """
    if not is_binary(cluster):
        raise InputError(
            f"{cluster.name} is a kubeadm cluster: the binary layout settings apply only to "
            "binary installs",
            "cluster",
        )
    cleaned = validate(values)
    with transaction.atomic():
        # Under the cluster's lock: two first saves insert one row, and a save racing the
        # cluster's deletion is a Conflict.
        inventory.lock_cluster(cluster)
        stored = ClusterBinarySettings.objects.filter(cluster=cluster).first()
        current = stored or ClusterBinarySettings(cluster=cluster)
        changed = [name for name, value in cleaned.items() if getattr(current, name) != value]
        for name, value in cleaned.items():
            setattr(current, name, value)
        current.save(force_insert=stored is None, force_update=stored is not None)
        audit.record(
            "binary_settings.update",
            actor,
            obj=cluster,
            details={"fields": sorted(changed), "ca_config": bool(values.get(CA_CONFIG))},
        )
    return current
