"""The inventory as the pure modules see it: a ``ClusterSpec`` and the certificate plan of the
cluster's flavor (kubeadm's tree, or the binary layout's files)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from nodes.models import Cluster, ClusterFlavor, Node
from pki.domain import binary_plan, binary_rules, kubeadm, kubeadm_config
from pki.domain.x509 import (
    PKIError,
)
from pki.models.binary_settings import ClusterBinarySettings
from pki.models.kubeadm_settings import ClusterKubeadmSettings
from pki.services.certificates.errors import PKIInputError


def node_spec(node: Node) -> kubeadm.NodeSpec:
    """The pure-module view of a node."""
    return kubeadm.NodeSpec(name=node.name, address=str(node.address), role=node.role)


def apiserver_port(cluster: Cluster) -> int:
    """The port every kube-apiserver of ``cluster`` listens on: ``secure-port`` from the
    cluster's kube-apiserver extra arguments, else 6443.

    The one answer for the kubeadm files (localAPIEndpoint.bindPort), the load balancer's
    backends, the local kubeconfigs (controller-manager, scheduler) and the health endpoints.
    """
    try:
        extra_args = cluster.kubeadm_settings.apiserver_extra_args
    except ClusterKubeadmSettings.DoesNotExist:
        extra_args = {}
    return kubeadm_config.apiserver_bind_port(extra_args)


def cluster_spec(cluster: Cluster, nodes: Iterable[Node] | None = None) -> kubeadm.ClusterSpec:
    """The cluster's kubeadm settings and current nodes as a ``ClusterSpec``."""
    if nodes is None:
        nodes = cluster.nodes.order_by("name")
    return kubeadm.ClusterSpec(
        cluster_name=cluster.cluster_name,
        control_plane_endpoint=cluster.normalized_endpoint
        if cluster.control_plane_endpoint
        else "",
        service_subnet=cluster.service_subnet,
        dns_domain=cluster.dns_domain,
        extra_sans=tuple(cluster.extra_sans or ()),
        etcd_topology=cluster.etcd_topology,
        key_algorithm=cluster.key_algorithm,
        validity=dt.timedelta(days=cluster.certificate_validity_days),
        ca_validity=dt.timedelta(days=cluster.ca_validity_days),
        nodes=tuple(node_spec(n) for n in nodes),
        api_server_port=apiserver_port(cluster),
    )


def is_binary(cluster: Cluster) -> bool:
    """Whether the cluster runs the components as binaries under systemd (no kubeadm)."""
    return bool(cluster.flavor == ClusterFlavor.BINARY)


def binary_settings_of(cluster: Cluster) -> ClusterBinarySettings:
    """The cluster's binary layout settings; an unsaved row of defaults when none is stored."""
    found = ClusterBinarySettings.objects.filter(cluster=cluster).first()
    return found if found is not None else ClusterBinarySettings(cluster=cluster)


def current_plan(cluster: Cluster) -> kubeadm.Plan:
    """The certificate plan of the cluster's flavor as it is now (PKIInputError if impossible):
    kubeadm's tree, or for a binary cluster the files of ``pki.domain.binary_layout.CERTS``
    with the validity of the cluster's signing profiles."""
    try:
        if is_binary(cluster):
            profiles = binary_rules.parsed_profiles(binary_settings_of(cluster).signing_profiles)
            return binary_plan.plan(cluster_spec(cluster), profiles)
        return kubeadm.plan(cluster_spec(cluster))
    except binary_rules.SettingError as exc:
        raise PKIInputError(
            f"the signing profiles cannot be used: {exc}", "signing_profiles"
        ) from None
    except PKIError as exc:
        raise PKIInputError(f"the cluster's topology cannot be issued: {exc}", "cluster") from None


def refuse_binary(cluster: Cluster, what: str, field: str = "cluster") -> None:
    """PKIInputError when ``cluster`` is a binary install and ``what`` exists only with kubeadm."""
    if is_binary(cluster):
        raise PKIInputError(
            f"{cluster.name} is a binary install (no kubeadm): it has no {what}", field
        )
