"""systemd units of a binary-installed cluster: etcd, the control plane, kubelet and kube-proxy.

Each unit runs one binary from the install prefix with its flags on continuation lines, one flag
per line and sorted by name (as kubeadm sorts a static pod's command), so a diff between two
renderings shows exactly the flags that changed. Every file a flag names is in the layout's
certificate or configuration directory (``flag_files`` lists them). No insecure port: the
components serve HTTPS only, etcd's plain-HTTP metrics listen on loopback.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pki.domain.binary_layout import (
    CA_FILES,
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBELET,
    SERVICE_ACCOUNT,
    SERVICES,
    services_for,
)
from pki.domain.binary_spec import (
    AUDIT_LOG,
    AUDIT_POLICY_FILE,
    ETCD_CLIENT_PORT,
    ETCD_METRICS_URL,
    KUBE_PROXY_CONFIG_FILE,
    KUBELET_CONFIG_FILE,
    TOKEN_FILE,
    BinarySpec,
    etcd_client_url,
    etcd_members,
    etcd_peer_url,
    is_etcd_member,
    runtime_endpoint,
)
from pki.domain.kubeadm import (
    CA,
    ETCD_CA,
    FRONT_PROXY_CA,
    TOPOLOGY_STACKED,
    NodeSpec,
    join_host_port,
)
from pki.domain.x509 import PKIError

# kubeadm's values for the aggregation layer (front proxy) headers.
REQUESTHEADER_ALLOWED_NAMES = "front-proxy-client"
REQUESTHEADER_EXTRA_HEADERS_PREFIX = "X-Remote-Extra-"
REQUESTHEADER_GROUP_HEADERS = "X-Remote-Group"
REQUESTHEADER_USERNAME_HEADERS = "X-Remote-User"

RESTART_SEC = 5
LIMIT_NOFILE = 65536

# The runtime's own unit, which kubelet needs running.
_RUNTIME_UNITS = {"containerd": "containerd.service", "cri-o": "crio.service"}
# Characters a flag value may hold: paths, URLs, addresses, lists. Nothing that systemd's
# ExecStart= would split or expand (spaces, quotes, backslashes, ``$`` and ``%`` specifiers).
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./:,=@+\-\[\]*]*")

Flag = tuple[str, str]


@dataclass(frozen=True)
class Unit:
    """One rendered unit: the service, its file path and text, and the flags it was made from."""

    service: str
    path: str
    text: str
    flags: tuple[Flag, ...]


def _check_value(service: str, name: str, value: str) -> str:
    if _SAFE_VALUE.fullmatch(value) is None:
        raise PKIError(
            f"{service} --{name}: {value!r} holds characters a systemd ExecStart= line would "
            "split or expand (spaces, quotes, backslashes, $ or %)"
        )
    return value


def _pair(spec: BinarySpec, base: str) -> tuple[str, str]:
    return spec.layout.pem(base), spec.layout.key(base)


ETCD_CLUSTER_STATES = ("new", "existing")


def etcd_flags(
    spec: BinarySpec, node: NodeSpec, *, initial_cluster_state: str = "new"
) -> list[Flag]:
    """etcd's flags: TLS with client certificates on both the client and the peer port,
    listening on the node address and loopback, metrics over plain HTTP on loopback only (where
    kubeadm puts them, port 2381)."""
    if initial_cluster_state not in ETCD_CLUSTER_STATES:
        raise PKIError(f"etcd's initial cluster state must be one of {ETCD_CLUSTER_STATES}")
    layout = spec.layout
    server_cert, server_key = _pair(spec, "etcd-server")
    peer_cert, peer_key = _pair(spec, "etcd-peer")
    ca = layout.pem(CA_FILES[ETCD_CA])
    members = ",".join(f"{m.name}={etcd_peer_url(m)}" for m in etcd_members(spec))
    loopback = f"https://{join_host_port('127.0.0.1', ETCD_CLIENT_PORT)}"
    return [
        ("advertise-client-urls", etcd_client_url(node)),
        ("cert-file", server_cert),
        ("client-cert-auth", "true"),
        ("data-dir", layout.etcd_data_dir),
        ("initial-advertise-peer-urls", etcd_peer_url(node)),
        ("initial-cluster", members),
        ("initial-cluster-state", initial_cluster_state),
        ("key-file", server_key),
        ("listen-client-urls", f"{etcd_client_url(node)},{loopback}"),
        ("listen-metrics-urls", ETCD_METRICS_URL),
        ("listen-peer-urls", etcd_peer_url(node)),
        ("name", node.name),
        ("peer-cert-file", peer_cert),
        ("peer-client-cert-auth", "true"),
        ("peer-key-file", peer_key),
        ("peer-trusted-ca-file", ca),
        ("trusted-ca-file", ca),
    ]


def apiserver_flags(spec: BinarySpec, node: NodeSpec) -> list[Flag]:
    """kube-apiserver's flags. Anonymous requests stay allowed, as in kubeadm: the panel's
    health checks and load balancers read ``/livez`` and ``/readyz`` without a certificate, and
    RBAC lets anonymous users see nothing else."""
    layout = spec.layout
    cluster = spec.cluster
    ca = layout.pem(CA_FILES[CA])
    etcd_cert, etcd_key = _pair(spec, "apiserver-etcd-client")
    tls_cert, tls_key = _pair(spec, "kubernetes")
    kubelet_cert, kubelet_key = _pair(spec, "apiserver-kubelet-client")
    proxy_cert, proxy_key = _pair(spec, "proxy-client")
    servers = ",".join(etcd_client_url(member) for member in etcd_members(spec))
    if not servers:
        raise PKIError("the cluster has no etcd member for kube-apiserver to use")
    flags: list[Flag] = [
        ("advertise-address", node.address),
        ("allow-privileged", "true"),
        ("authorization-mode", "Node,RBAC"),
        # Every address, loopback included: controller-manager and scheduler use 127.0.0.1.
        ("bind-address", "0.0.0.0"),  # noqa: S104
        ("client-ca-file", ca),
        ("enable-admission-plugins", "NodeRestriction"),
        ("enable-aggregator-routing", "true"),
        ("etcd-cafile", layout.pem(CA_FILES[ETCD_CA])),
        ("etcd-certfile", etcd_cert),
        ("etcd-keyfile", etcd_key),
        ("etcd-servers", servers),
        ("kubelet-certificate-authority", ca),
        ("kubelet-client-certificate", kubelet_cert),
        ("kubelet-client-key", kubelet_key),
        ("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        ("proxy-client-cert-file", proxy_cert),
        ("proxy-client-key-file", proxy_key),
        ("requestheader-allowed-names", REQUESTHEADER_ALLOWED_NAMES),
        ("requestheader-client-ca-file", layout.pem(CA_FILES[FRONT_PROXY_CA])),
        ("requestheader-extra-headers-prefix", REQUESTHEADER_EXTRA_HEADERS_PREFIX),
        ("requestheader-group-headers", REQUESTHEADER_GROUP_HEADERS),
        ("requestheader-username-headers", REQUESTHEADER_USERNAME_HEADERS),
        ("secure-port", str(cluster.api_server_port)),
        ("service-account-issuer", f"https://kubernetes.default.svc.{cluster.dns_domain}"),
        ("service-account-key-file", layout.pem(SERVICE_ACCOUNT)),
        ("service-account-signing-key-file", layout.key(SERVICE_ACCOUNT)),
        ("service-cluster-ip-range", cluster.service_subnet),
        ("service-node-port-range", spec.service_node_port_range),
        ("tls-cert-file", tls_cert),
        ("tls-private-key-file", tls_key),
    ]
    if spec.audit:
        flags += [
            ("audit-log-maxage", str(AUDIT_LOG.max_age_days)),
            ("audit-log-maxbackup", str(AUDIT_LOG.max_backups)),
            ("audit-log-maxsize", str(AUDIT_LOG.max_size_mb)),
            ("audit-log-path", AUDIT_LOG.log_path),
            ("audit-policy-file", layout.config(AUDIT_POLICY_FILE)),
        ]
    if spec.static_tokens:
        flags.append(("token-auth-file", layout.config(TOKEN_FILE)))
    return sorted(flags)


def controller_manager_flags(spec: BinarySpec) -> list[Flag]:
    """kube-controller-manager's flags: it signs kubelet CSRs with the cluster CA, signs service
    account tokens with the service-account key, and allocates pod CIDRs when a pod subnet is
    set (as kubeadm does)."""
    layout = spec.layout
    cluster = spec.cluster
    kubeconfig = layout.kubeconfig(KUBE_CONTROLLER_MANAGER)
    ca = layout.pem(CA_FILES[CA])
    flags: list[Flag] = [
        ("authentication-kubeconfig", kubeconfig),
        ("authorization-kubeconfig", kubeconfig),
        ("bind-address", "127.0.0.1"),
        ("client-ca-file", ca),
        ("cluster-name", cluster.cluster_name),
        ("cluster-signing-cert-file", ca),
        ("cluster-signing-key-file", layout.key(CA_FILES[CA])),
        ("kubeconfig", kubeconfig),
        ("leader-elect", "true"),
        ("requestheader-client-ca-file", layout.pem(CA_FILES[FRONT_PROXY_CA])),
        ("root-ca-file", ca),
        ("service-account-private-key-file", layout.key(SERVICE_ACCOUNT)),
        ("service-cluster-ip-range", cluster.service_subnet),
        ("use-service-account-credentials", "true"),
    ]
    if spec.pod_subnet:
        flags += [("allocate-node-cidrs", "true"), ("cluster-cidr", spec.pod_subnet)]
    return sorted(flags)


def scheduler_flags(spec: BinarySpec) -> list[Flag]:
    kubeconfig = spec.layout.kubeconfig(KUBE_SCHEDULER)
    return [
        ("authentication-kubeconfig", kubeconfig),
        ("authorization-kubeconfig", kubeconfig),
        ("bind-address", "127.0.0.1"),
        ("kubeconfig", kubeconfig),
        ("leader-elect", "true"),
    ]


def kubelet_flags(spec: BinarySpec, node: NodeSpec) -> list[Flag]:
    """kubelet's flags; the rest is in its configuration file. The node name is the inventory's
    (its client certificate is ``system:node:<name>``, and NodeRestriction holds it to it)."""
    return [
        ("config", spec.layout.config(KUBELET_CONFIG_FILE)),
        ("container-runtime-endpoint", runtime_endpoint(spec)),
        ("hostname-override", node.name),
        ("kubeconfig", spec.layout.kubeconfig(KUBELET)),
        ("node-ip", node.address),
    ]


def kube_proxy_flags(spec: BinarySpec) -> list[Flag]:
    return [("config", spec.layout.config(KUBE_PROXY_CONFIG_FILE))]


def flags_for(
    spec: BinarySpec, node: NodeSpec, service: str, *, initial_cluster_state: str = "new"
) -> list[Flag]:
    """The flags of ``service`` on ``node``."""
    if service == ETCD:
        return etcd_flags(spec, node, initial_cluster_state=initial_cluster_state)
    if service == KUBE_APISERVER:
        return apiserver_flags(spec, node)
    if service == KUBE_CONTROLLER_MANAGER:
        return controller_manager_flags(spec)
    if service == KUBE_SCHEDULER:
        return scheduler_flags(spec)
    if service == KUBELET:
        return kubelet_flags(spec, node)
    if service == KUBE_PROXY:
        return kube_proxy_flags(spec)
    raise PKIError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")


# Flags whose value is a file the node must hold (the rest are addresses, URLs and switches).
FILE_FLAGS = frozenset(
    {
        "audit-policy-file",
        "authentication-kubeconfig",
        "authorization-kubeconfig",
        "cert-file",
        "client-ca-file",
        "cluster-signing-cert-file",
        "cluster-signing-key-file",
        "config",
        "etcd-cafile",
        "etcd-certfile",
        "etcd-keyfile",
        "key-file",
        "kubeconfig",
        "kubelet-certificate-authority",
        "kubelet-client-certificate",
        "kubelet-client-key",
        "peer-cert-file",
        "peer-key-file",
        "peer-trusted-ca-file",
        "proxy-client-cert-file",
        "proxy-client-key-file",
        "requestheader-client-ca-file",
        "root-ca-file",
        "service-account-key-file",
        "service-account-private-key-file",
        "service-account-signing-key-file",
        "tls-cert-file",
        "tls-private-key-file",
        "token-auth-file",
        "trusted-ca-file",
    }
)


def flag_files(unit: Unit) -> set[str]:
    """Every file a unit's flags name."""
    return {value for name, value in unit.flags if name in FILE_FLAGS}


def _unit_section(spec: BinarySpec, service: str) -> list[str]:
    """Ordering and dependencies. ``Wants=`` rather than ``Requires=``: a restart of etcd or of
    the apiserver must not stop the services after it; they retry until it is back."""
    after = ["network-online.target"]
    wants = ["network-online.target"]
    if service == KUBE_APISERVER and spec.cluster.etcd_topology == TOPOLOGY_STACKED:
        after.append("etcd.service")
        wants.append("etcd.service")
    elif service in (KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER):
        after.append("kube-apiserver.service")
        wants.append("kube-apiserver.service")
    elif service == KUBELET:
        runtime = _RUNTIME_UNITS[spec.container_runtime]
        after.append(runtime)
        wants.append(runtime)
    return [
        "[Unit]",
        f"Description={_DESCRIPTIONS[service]}",
        f"Documentation={_DOCUMENTATION[service]}",
        f"After={' '.join(after)}",
        f"Wants={' '.join(wants)}",
    ]


_DESCRIPTIONS = {
    ETCD: "etcd key-value store",
    KUBE_APISERVER: "Kubernetes API Server",
    KUBE_CONTROLLER_MANAGER: "Kubernetes Controller Manager",
    KUBE_SCHEDULER: "Kubernetes Scheduler",
    KUBELET: "Kubernetes Kubelet",
    KUBE_PROXY: "Kubernetes Kube Proxy",
}
_DOCUMENTATION = {
    service: "https://etcd.io/docs/" if service == ETCD else "https://kubernetes.io/docs/"
    for service in SERVICES
}
# kubelet manages containers, mounts and cgroups; kube-proxy programs iptables or IPVS: both need
# root. The others only read their files and listen on ports above 1024.
ROOT_SERVICES = frozenset({KUBELET, KUBE_PROXY})
# etcd and kube-apiserver tell systemd when they serve (sd_notify), so "started" means ready and
# the units after them start against a working service.
NOTIFY_SERVICES = frozenset({ETCD, KUBE_APISERVER})


def service_user(spec: BinarySpec, service: str) -> str:
    """The user a service runs as: root for kubelet and kube-proxy, the layout's service user
    for the others (it must be able to read their keys and write etcd's data directory)."""
    return "root" if service in ROOT_SERVICES else spec.layout.service_user


def render_unit(
    spec: BinarySpec, node: NodeSpec, service: str, *, initial_cluster_state: str = "new"
) -> Unit:
    """The unit file of ``service`` on ``node``."""
    flags = tuple(flags_for(spec, node, service, initial_cluster_state=initial_cluster_state))
    binary = spec.layout.binary(service)
    lines = [*_unit_section(spec, service), "", "[Service]"]
    if service in NOTIFY_SERVICES:
        lines.append("Type=notify")
    lines.append(f"User={service_user(spec, service)}")
    exec_lines = [f"ExecStart={binary}"]
    exec_lines += [f"--{name}={_check_value(service, name, value)}" for name, value in flags]
    lines.append(" \\\n  ".join(exec_lines))
    lines += [
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        f"LimitNOFILE={LIMIT_NOFILE}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    text = "\n".join(lines) + "\n"
    return Unit(service, spec.layout.unit(service), text, flags)


def node_units(
    spec: BinarySpec, node: NodeSpec, *, initial_cluster_state: str = "new"
) -> list[Unit]:
    """The units ``node`` runs, in start order. ``initial_cluster_state`` is etcd's: ``new``
    when the members start together, ``existing`` for a member added to a running cluster."""
    services = services_for(node.role, etcd_member=is_etcd_member(spec, node))
    return [
        render_unit(spec, node, service, initial_cluster_state=initial_cluster_state)
        for service in services
    ]
