"""A binary-installed cluster's layout: directories, service user, signing profiles, kube-proxy."""

from __future__ import annotations

from typing import Any

from django.db import models

from pki.domain.binary_layout import PROFILE_CLIENT, PROFILE_PEER, PROFILE_SERVER, BinaryLayout

__all__ = ["ClusterBinarySettings", "KubeProxyMode", "default_signing_profiles"]

_DEFAULT_LAYOUT = BinaryLayout()


def default_signing_profiles() -> dict[str, Any]:
    """The ``signing.profiles`` of the usual cfssl ``ca-config.json`` (one year: ``8760h``)."""
    return {
        PROFILE_SERVER: {
            "usages": ["signing", "key encipherment", "server auth"],
            "expiry": "8760h",
        },
        PROFILE_CLIENT: {
            "usages": ["signing", "key encipherment", "client auth"],
            "expiry": "8760h",
        },
        PROFILE_PEER: {
            "usages": ["signing", "key encipherment", "server auth", "client auth"],
            "expiry": "8760h",
        },
    }


class KubeProxyMode(models.TextChoices):
    IPVS = "ipvs", "ipvs"
    IPTABLES = "iptables", "iptables"


class ClusterBinarySettings(models.Model):
    """Settings of a cluster whose flavor is ``binary``; absent rows mean the defaults."""

    cluster = models.OneToOneField(
        "nodes.Cluster", on_delete=models.CASCADE, related_name="binary_settings"
    )
    install_prefix = models.CharField(max_length=255, default=_DEFAULT_LAYOUT.install_prefix)
    cert_dir = models.CharField(max_length=255, default=_DEFAULT_LAYOUT.cert_dir)
    config_dir = models.CharField(max_length=255, default=_DEFAULT_LAYOUT.config_dir)
    service_user = models.CharField(max_length=32, default=_DEFAULT_LAYOUT.service_user)
    etcd_data_dir = models.CharField(max_length=255, default=_DEFAULT_LAYOUT.etcd_data_dir)
    # cfssl's signing.profiles: {"server": {"usages": [...], "expiry": "8760h"}, ...}
    signing_profiles = models.JSONField(default=default_signing_profiles, blank=True)
    kube_proxy_mode = models.CharField(
        max_length=16, choices=KubeProxyMode.choices, default=KubeProxyMode.IPVS
    )
    ipvs_scheduler = models.CharField(max_length=16, default="rr")
    service_node_port_range = models.CharField(max_length=32, default="30000-32767")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "cluster binary settings"

    def __str__(self) -> str:
        return f"binary settings of {self.cluster}"

    def layout(self) -> BinaryLayout:
        """The directories as the pure layout the renderers read."""
        return BinaryLayout(
            install_prefix=self.install_prefix,
            cert_dir=self.cert_dir,
            config_dir=self.config_dir,
            service_user=self.service_user,
            etcd_data_dir=self.etcd_data_dir,
        )
