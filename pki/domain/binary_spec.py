"""What the rendered files of a binary-installed cluster depend on, and the names of those files.

``BinarySpec`` bundles the directories (``BinaryLayout``), the topology (``ClusterSpec`` with its
``NodeSpec`` list) and the few component settings a binary install adds (kube-proxy mode, node
port range, static tokens, audit logging). The unit, configuration and kubeconfig renderers
(``binary_units``, ``binary_configs``, ``binary_kubeconfig``) read only this.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pki.domain.binary_layout import BinaryLayout
from pki.domain.kubeadm import (
    ROLE_CONTROL_PLANE,
    ROLE_ETCD,
    TOPOLOGY_STACKED,
    ClusterSpec,
    NodeSpec,
    join_host_port,
    split_host_port,
)
from pki.domain.kubeadm_config import CRI_SOCKETS, AuditLogConfig
from pki.domain.x509 import PKIError

# Files of the configuration directory besides the kubeconfigs.
AUDIT_POLICY_FILE = "audit-policy.yaml"
TOKEN_FILE = "tokens.csv"  # noqa: S105 - a file name
KUBELET_CONFIG_FILE = "kubelet-config.yaml"
KUBE_PROXY_CONFIG_FILE = "kube-proxy-config.yaml"

# Where the audit log goes and how it rotates: the same as in the panel's kubeadm clusters.
AUDIT_LOG = AuditLogConfig()

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ETCD_METRICS_URL = "http://127.0.0.1:2381"
KUBE_PROXY_MODES = ("ipvs", "iptables")


@dataclass(frozen=True)
class BinarySpec:
    """Everything the rendered files of one binary-installed cluster are made from."""

    layout: BinaryLayout
    cluster: ClusterSpec
    pod_subnet: str = ""
    container_runtime: str = "containerd"
    kube_proxy_mode: str = "ipvs"
    ipvs_scheduler: str = "rr"
    service_node_port_range: str = "30000-32767"
    # Whether kube-apiserver reads a static token file (``--token-auth-file``).
    static_tokens: bool = False
    audit: bool = True

    def __post_init__(self) -> None:
        if self.kube_proxy_mode not in KUBE_PROXY_MODES:
            raise PKIError(f"kube-proxy mode must be one of {', '.join(KUBE_PROXY_MODES)}")
        if self.container_runtime not in CRI_SOCKETS:
            raise PKIError(f"container runtime must be one of {', '.join(CRI_SOCKETS)}")


def etcd_members(spec: BinarySpec) -> list[NodeSpec]:
    """The etcd members in inventory order: the control-plane nodes when etcd is stacked on them,
    the etcd nodes otherwise."""
    role = ROLE_CONTROL_PLANE if spec.cluster.etcd_topology == TOPOLOGY_STACKED else ROLE_ETCD
    return spec.cluster.nodes_with_role(role)


def is_etcd_member(spec: BinarySpec, node: NodeSpec) -> bool:
    """Whether ``node`` runs etcd."""
    return any(member.name == node.name for member in etcd_members(spec))


def etcd_client_url(node: NodeSpec) -> str:
    return f"https://{join_host_port(node.address, ETCD_CLIENT_PORT)}"


def etcd_peer_url(node: NodeSpec) -> str:
    return f"https://{join_host_port(node.address, ETCD_PEER_PORT)}"


def control_plane_url(spec: BinarySpec) -> str:
    """The API server URL for clients outside the control plane (kubelet, kube-proxy, admin):
    the control-plane endpoint (its port, else the apiserver port), else the first control-plane
    node."""
    cluster = spec.cluster
    if cluster.control_plane_endpoint:
        host, port = split_host_port(cluster.control_plane_endpoint)
        return f"https://{join_host_port(host, port or cluster.api_server_port)}"
    control_planes = cluster.nodes_with_role(ROLE_CONTROL_PLANE)
    if not control_planes:
        raise PKIError("the cluster has no control-plane endpoint and no control-plane node")
    return f"https://{join_host_port(control_planes[0].address, cluster.api_server_port)}"


def local_api_url(spec: BinarySpec) -> str:
    """The apiserver of the node itself, over loopback (kube-apiserver binds every address)."""
    return f"https://{join_host_port('127.0.0.1', spec.cluster.api_server_port)}"


def cluster_dns_ip(service_subnet: str) -> str:
    """The tenth address of the (first) service subnet: the cluster DNS Service IP, as kubeadm's
    ``GetDNSIP`` picks it (10.96.0.10 for 10.96.0.0/12)."""
    first = service_subnet.split(",")[0].strip()
    try:
        network = ipaddress.ip_network(first, strict=False)
    except ValueError:
        raise PKIError(f"service subnet {service_subnet!r} is not a valid CIDR") from None
    if network.num_addresses <= 10:
        raise PKIError(f"service subnet {service_subnet!r} has no room for the cluster DNS IP")
    return str(network.network_address + 10)


def runtime_endpoint(spec: BinarySpec) -> str:
    """The CRI socket of the cluster's container runtime."""
    return CRI_SOCKETS[spec.container_runtime]
