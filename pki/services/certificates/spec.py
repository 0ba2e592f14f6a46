"""The inventory as the pure modules see it: a ``ClusterSpec`` and kubeadm's certificate plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from nodes.models import Cluster, Node
from pki.domain import kubeadm, kubeadm_config
from pki.domain.x509 import (
    PKIError,
)
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


def current_plan(cluster: Cluster) -> kubeadm.Plan:
    """kubeadm's certificate plan for the cluster as it is now (PKIInputError if impossible)."""
    try:
        return kubeadm.plan(cluster_spec(cluster))
    except PKIError as exc:
        raise PKIInputError(f"the cluster's topology cannot be issued: {exc}", "cluster") from None
