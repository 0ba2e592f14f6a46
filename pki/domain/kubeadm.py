"""The certificate plan of a kubeadm cluster: which files exist, with which CN, O, usages and SANs.

Turns a topology (``ClusterSpec`` with its ``NodeSpec`` list) into the ``CertSpec`` list of every
file kubeadm would have written under ``/etc/kubernetes`` on every node (docs/kubeadm.md sections 1
and 2), and issues the whole tree with ``pki.domain.x509``. Pure Python: no Django, no I/O.

SAN rules follow kubeadm's ``pkiutil.GetAPIServerAltNames`` / ``getAltNames`` and
``appendSANsToAltNames``: DNS names de-duplicated and sorted, IPs de-duplicated in order, invalid
``certSANs`` dropped with kubeadm's warning.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from cryptography import x509

from pki.domain import kubeconfig as kubeconfig_mod
from pki.domain.names import is_dns1123_subdomain, is_wildcard_dns1123_subdomain
from pki.domain.x509 import (
    DEFAULT_CA_VALIDITY,
    DEFAULT_KEY_ALGORITHM,
    DEFAULT_VALIDITY,
    KEY_ALGORITHMS,
    USAGE_CLIENT,
    USAGE_SERVER,
    CertSpec,
    PKIError,
    PrivateKey,
    certificate_to_pem,
    check_host,
    create_ca,
    generate_private_key,
    private_key_to_pem,
    public_key_to_pem,
    require_key_matches,
    sign_certificate,
)

ROLE_CONTROL_PLANE = "control-plane"
ROLE_WORKER = "worker"
ROLE_ETCD = "etcd"
ROLES = (ROLE_CONTROL_PLANE, ROLE_WORKER, ROLE_ETCD)
TOPOLOGY_STACKED = "stacked"
TOPOLOGY_EXTERNAL = "external"
DEFAULT_API_PORT = 6443

CA = "ca"
FRONT_PROXY_CA = "front-proxy-ca"
ETCD_CA = "etcd/ca"
CA_NAMES = (CA, FRONT_PROXY_CA, ETCD_CA)
KUBECONFIG_NAMES = (
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
    "kubelet.conf",
)
# Kubeconfigs that talk to the API through controlPlaneEndpoint; the others use the local apiserver.
_ENDPOINT_KUBECONFIGS = ("admin.conf", "super-admin.conf", "kubelet.conf")

CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"
MASTERS_GROUP = "system:masters"
NODES_GROUP = "system:nodes"


@dataclass(frozen=True)
class NodeSpec:
    """One machine: its node name, advertise address (an IP) and role."""

    name: str
    address: str
    role: str = ROLE_CONTROL_PLANE


@dataclass(frozen=True)
class ClusterSpec:
    """The parts of a kubeadm ClusterConfiguration that decide the certificate tree."""

    cluster_name: str = "kubernetes"
    control_plane_endpoint: str = ""
    service_subnet: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    extra_sans: tuple[str, ...] = ()
    etcd_topology: str = TOPOLOGY_STACKED
    key_algorithm: str = DEFAULT_KEY_ALGORITHM
    validity: dt.timedelta = DEFAULT_VALIDITY
    ca_validity: dt.timedelta = DEFAULT_CA_VALIDITY
    nodes: tuple[NodeSpec, ...] = ()
    etcd_server_sans: tuple[str, ...] = ()
    etcd_peer_sans: tuple[str, ...] = ()
    # localAPIEndpoint.bindPort: where each node's own apiserver listens.
    api_server_port: int = DEFAULT_API_PORT

    def nodes_with_role(self, role: str) -> list[NodeSpec]:
        """Nodes of one role, in inventory order."""
        return [n for n in self.nodes if n.role == role]


@dataclass
class Plan:
    """Every certificate of the cluster, plus the warnings produced while computing SANs."""

    specs: list[CertSpec]
    warnings: list[str] = field(default_factory=list)
    key_algorithm: str = DEFAULT_KEY_ALGORITHM

    def get(self, name: str, node: str | None = None) -> CertSpec:
        """The spec of one file (PKIError if the plan has none)."""
        for spec in self.specs:
            if spec.name == name and spec.node == node:
                return spec
        where = f" for node {node!r}" if node else ""
        raise PKIError(f"the plan has no certificate {name!r}{where}")


@dataclass(frozen=True)
class Issued:
    """A signed certificate with its private key."""

    spec: CertSpec
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        """The certificate as PEM."""
        return certificate_to_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        """The private key as PEM (PKCS#1 / SEC1)."""
        return private_key_to_pem(self.key)


@dataclass
class IssuedTree:
    """Result of ``issue``: CAs by name, leaves by (name, node), and the service-account key."""

    cas: dict[str, Issued]
    leaves: dict[tuple[str, str | None], Issued]
    sa_key: PrivateKey

    def get(self, name: str, node: str | None = None) -> Issued:
        """One CA or leaf (PKIError if absent)."""
        if node is None and name in self.cas:
            return self.cas[name]
        try:
            return self.leaves[(name, node)]
        except KeyError:
            where = f" for node {node!r}" if node else ""
            raise PKIError(f"no issued certificate {name!r}{where}") from None

    def all(self) -> list[Issued]:
        """CAs then leaves, in plan order."""
        return [*self.cas.values(), *self.leaves.values()]


# --------------------------------------------------------------------------- addresses


def split_host_port(hostport: str) -> tuple[str, str]:
    """kubeadm's ``ParseHostPort``: ``host[:port]`` or ``[v6]:port``; a bare IPv6 is a host."""
    host, port = hostport, ""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end > 0 and hostport[end + 1 :].startswith(":"):
            host, port = hostport[1:end], hostport[end + 2 :]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise PKIError(
            f"hostport {hostport}: port {port} must be a valid number between 1 and 65535, "
            "inclusive"
        )
    if _parse_ip(host) is None and not is_dns1123_subdomain(host):
        raise PKIError(
            f"hostport {hostport}: host '{host}' must be a valid IP address or a valid RFC-1123 "
            "DNS subdomain"
        )
    return host, port


def join_host_port(host: str, port: int | str) -> str:
    """``host:port`` with an IPv6 host in brackets (Go's ``net.JoinHostPort``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def first_service_ip(subnet: str) -> str:
    """First host address of the (first) service subnet: the ``kubernetes`` Service IP."""
    first = subnet.split(",")[0].strip()
    try:
        network = ipaddress.ip_network(first, strict=False)
    except ValueError:
        raise PKIError(f"service subnet {subnet!r} is not a valid CIDR") from None
    if network.num_addresses < 2:
        raise PKIError(f"service subnet {subnet!r} has no room for the kubernetes Service IP")
    return str(network.network_address + 1)


def _node_address(node: NodeSpec) -> str:
    ip = _parse_ip(node.address)
    if ip is None:
        raise PKIError(
            f"node {node.name!r}: advertise address {node.address!r} is not a valid IP address"
        )
    return str(ip)


def _append_sans(
    dns: list[str], ips: list[str], sans: Iterable[str], cert_name: str, warnings: list[str]
) -> None:
    """kubeadm's ``appendSANsToAltNames``: IP, else DNS-1123 (or wildcard), else warn and drop."""
    for san in sans:
        ip = _parse_ip(san)
        if ip is not None:
            ips.append(str(ip))
        elif is_dns1123_subdomain(san) or is_wildcard_dns1123_subdomain(san):
            dns.append(san)
        else:
            warnings.append(
                f"[certificates] WARNING: '{san}' was not added to the '{cert_name}' SAN, because "
                "it is not a valid IP or RFC-1123 compliant DNS entry"
            )


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``value`` stands for, or None when it is no IP."""
    return _parse_ip(value)


def node_address(node: NodeSpec) -> str:
    """The node's advertise address, normalised (PKIError when it is no IP)."""
    return _node_address(node)


def append_sans(
    dns: list[str], ips: list[str], sans: Iterable[str], cert_name: str, warnings: list[str]
) -> None:
    """Sort extra SANs into DNS names and IPs as kubeadm does, warning about invalid ones."""
    _append_sans(dns, ips, sans, cert_name, warnings)


def _dedupe(dns: list[str], ips: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # RemoveDuplicateAltNames: DNS names become a sorted set, IPs keep their first position.
    return tuple(sorted(set(dns))), tuple(dict.fromkeys(ips))


def apiserver_sans(
    cluster: ClusterSpec, node: NodeSpec
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """DNS SANs, IP SANs and warnings of ``apiserver`` on ``node``."""
    warnings: list[str] = []
    dns = [
        node.name,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
    ]
    ips = [first_service_ip(cluster.service_subnet), _node_address(node)]
    if cluster.control_plane_endpoint:
        host, _ = split_host_port(cluster.control_plane_endpoint)
        ip = _parse_ip(host)
        if ip is not None:
            ips.append(str(ip))
        else:
            dns.append(host)
    _append_sans(dns, ips, cluster.extra_sans, "apiserver", warnings)
    dns_out, ips_out = _dedupe(dns, ips)
    return dns_out, ips_out, warnings


def etcd_sans(
    node: NodeSpec, extra: Iterable[str] = (), cert_name: str = "etcd/server"
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """DNS SANs, IP SANs and warnings of ``etcd/server`` or ``etcd/peer`` on ``node``."""
    warnings: list[str] = []
    dns = [node.name, "localhost"]
    ips = [_node_address(node), "127.0.0.1", "::1"]
    _append_sans(dns, ips, extra, cert_name, warnings)
    dns_out, ips_out = _dedupe(dns, ips)
    return dns_out, ips_out, warnings


# --------------------------------------------------------------------------- plan


def _validate(cluster: ClusterSpec) -> None:
    if cluster.key_algorithm not in KEY_ALGORITHMS:
        raise PKIError(
            f"unknown key algorithm {cluster.key_algorithm!r}; expected one of "
            f"{', '.join(KEY_ALGORITHMS)}"
        )
    if cluster.etcd_topology not in (TOPOLOGY_STACKED, TOPOLOGY_EXTERNAL):
        raise PKIError(
            f"etcd topology must be 'stacked' or 'external', not {cluster.etcd_topology!r}"
        )
    if not is_dns1123_subdomain(cluster.dns_domain):
        raise PKIError(f"DNS domain {cluster.dns_domain!r} is not a valid RFC-1123 subdomain")
    if cluster.validity > cluster.ca_validity:
        raise PKIError(
            f"certificate validity ({cluster.validity.days} days) exceeds the CA validity "
            f"({cluster.ca_validity.days} days); certificates cannot outlive their CA"
        )
    _validate_nodes(cluster)


def validate_topology(cluster: ClusterSpec) -> None:
    """PKIError when no certificate tree can be planned for ``cluster`` (any flavor)."""
    _validate(cluster)


def _validate_nodes(cluster: ClusterSpec) -> None:
    names: set[str] = set()
    addresses: set[str] = set()
    for node in cluster.nodes:
        if node.role not in ROLES:
            raise PKIError(f"node {node.name!r}: role must be one of {', '.join(ROLES)}")
        if not is_dns1123_subdomain(node.name):
            raise PKIError(f"node name {node.name!r} is not a valid RFC-1123 subdomain")
        address = _node_address(node)
        if node.name in names:
            raise PKIError(f"node name {node.name!r} is used twice")
        if address in addresses:
            raise PKIError(f"address {address} is used by two nodes")
        names.add(node.name)
        addresses.add(address)
    if not cluster.nodes_with_role(ROLE_CONTROL_PLANE):
        raise PKIError("the cluster needs at least one control-plane node")
    if cluster.etcd_topology == TOPOLOGY_STACKED and cluster.nodes_with_role(ROLE_ETCD):
        raise PKIError(
            "nodes with role 'etcd' need the external etcd topology; stacked etcd runs on the "
            "control-plane nodes"
        )


def ca_specs(cluster: ClusterSpec) -> list[CertSpec]:
    """The three CAs: cluster CA, front-proxy CA and etcd CA (kept for external etcd too)."""
    return [
        CertSpec(CA, None, "kubernetes", is_ca=True, validity=cluster.ca_validity),
        CertSpec(FRONT_PROXY_CA, None, "front-proxy-ca", is_ca=True, validity=cluster.ca_validity),
        CertSpec(ETCD_CA, None, "etcd-ca", is_ca=True, validity=cluster.ca_validity),
    ]


def _shared_leaf_specs(cluster: ClusterSpec) -> list[CertSpec]:
    client = (USAGE_CLIENT,)
    v = cluster.validity
    return [
        CertSpec(
            "apiserver-kubelet-client",
            CA,
            "kube-apiserver-kubelet-client",
            organizations=(CLUSTER_ADMINS_GROUP,),
            usages=client,
            validity=v,
        ),
        CertSpec(
            "front-proxy-client", FRONT_PROXY_CA, "front-proxy-client", usages=client, validity=v
        ),
        CertSpec(
            "apiserver-etcd-client",
            ETCD_CA,
            "kube-apiserver-etcd-client",
            usages=client,
            validity=v,
        ),
        CertSpec(
            "etcd/healthcheck-client",
            ETCD_CA,
            "kube-etcd-healthcheck-client",
            usages=client,
            validity=v,
        ),
    ]


def _etcd_specs(cluster: ClusterSpec, node: NodeSpec, warnings: list[str]) -> list[CertSpec]:
    both = (USAGE_SERVER, USAGE_CLIENT)
    specs = []
    for name, extra in (
        ("etcd/server", cluster.etcd_server_sans),
        ("etcd/peer", cluster.etcd_peer_sans),
    ):
        dns, ips, warns = etcd_sans(node, extra, name)
        warnings.extend(warns)
        specs.append(
            CertSpec(
                name,
                ETCD_CA,
                node.name,
                dns_names=dns,
                ip_addresses=ips,
                usages=both,
                node=node.name,
                validity=cluster.validity,
            )
        )
    return specs


def kubeconfig_spec(cluster: ClusterSpec, name: str, node: NodeSpec) -> CertSpec:
    """Client certificate embedded in one of kubeadm's kubeconfig files for ``node``."""
    subjects = {
        "admin.conf": ("kubernetes-admin", (CLUSTER_ADMINS_GROUP,)),
        "super-admin.conf": ("kubernetes-super-admin", (MASTERS_GROUP,)),
        "controller-manager.conf": ("system:kube-controller-manager", ()),
        "scheduler.conf": ("system:kube-scheduler", ()),
        "kubelet.conf": (f"system:node:{node.name}", (NODES_GROUP,)),
    }
    if name not in subjects:
        raise PKIError(f"unknown kubeconfig {name!r}; expected one of {', '.join(subjects)}")
    cn, orgs = subjects[name]
    return CertSpec(
        name,
        CA,
        cn,
        organizations=orgs,
        usages=(USAGE_CLIENT,),
        node=node.name,
        validity=cluster.validity,
    )


def _control_plane_specs(
    cluster: ClusterSpec, node: NodeSpec, warnings: list[str]
) -> list[CertSpec]:
    dns, ips, warns = apiserver_sans(cluster, node)
    # The same certSANs produce the same warning on every node; report it once.
    warnings.extend(w for w in warns if w not in warnings)
    specs = [
        CertSpec(
            "apiserver",
            CA,
            "kube-apiserver",
            dns_names=dns,
            ip_addresses=ips,
            usages=(USAGE_SERVER,),
            node=node.name,
            validity=cluster.validity,
        )
    ]
    if cluster.etcd_topology == TOPOLOGY_STACKED:
        specs += _etcd_specs(cluster, node, warnings)
    for name in ("controller-manager.conf", "scheduler.conf", "admin.conf", "super-admin.conf"):
        specs.append(kubeconfig_spec(cluster, name, node))
    return specs


def plan(cluster: ClusterSpec) -> Plan:
    """Every certificate file of the cluster: shared ones once (node None), then per node."""
    _validate(cluster)
    warnings: list[str] = []
    specs = ca_specs(cluster) + _shared_leaf_specs(cluster)
    for node in cluster.nodes_with_role(ROLE_CONTROL_PLANE):
        specs += _control_plane_specs(cluster, node, warnings)
    if cluster.etcd_topology == TOPOLOGY_EXTERNAL:
        etcd_nodes = cluster.nodes_with_role(ROLE_ETCD)
        if not etcd_nodes:
            warnings.append(
                "external etcd topology without nodes of role 'etcd': no etcd server or peer "
                "certificates are planned"
            )
        for node in etcd_nodes:
            specs += _etcd_specs(cluster, node, warnings)
    for node in cluster.nodes:
        if node.role in (ROLE_CONTROL_PLANE, ROLE_WORKER):
            specs.append(kubeconfig_spec(cluster, "kubelet.conf", node))
    return Plan(specs=specs, warnings=warnings, key_algorithm=cluster.key_algorithm)


def kubeconfig_server(cluster: ClusterSpec, node: NodeSpec, kubeconfig: str = "admin.conf") -> str:
    """API server URL written into ``kubeconfig`` on ``node``.

    admin, super-admin and kubelet go through controlPlaneEndpoint (its port, else bindPort; the
    node's local endpoint when no endpoint is set); controller-manager and scheduler talk to the
    local apiserver at ``https://<advertise address>:<bindPort>``, as kubeadm's
    GetControlPlaneEndpoint and GetLocalAPIEndpoint do.
    """
    if kubeconfig not in KUBECONFIG_NAMES:
        raise PKIError(f"unknown kubeconfig {kubeconfig!r}")
    if kubeconfig in _ENDPOINT_KUBECONFIGS and cluster.control_plane_endpoint:
        host, port = split_host_port(cluster.control_plane_endpoint)
        return f"https://{join_host_port(host, port or cluster.api_server_port)}"
    return f"https://{join_host_port(_node_address(node), cluster.api_server_port)}"


# --------------------------------------------------------------------------- issuing


def key_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def generate_keys(algorithm: str, count: int, workers: int | None = None) -> list[PrivateKey]:
    """``count`` fresh keys, generated on a thread pool.

    OpenSSL releases the GIL while it searches for RSA primes, so threads use every core without
    the cost of shipping keys back from worker processes.
    """
    if count <= 0:
        return []
    workers = workers or key_workers()
    # An EC key takes microseconds; a thread pool would cost more than it saves.
    if workers == 1 or count == 1 or algorithm.startswith("ECDSA"):
        return [generate_private_key(algorithm) for _ in range(count)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda _: generate_private_key(algorithm), range(count)))


def issue(
    the_plan: Plan,
    cas: Mapping[str, tuple[x509.Certificate, PrivateKey]] | None = None,
    *,
    sa_key: PrivateKey | None = None,
    now: dt.datetime | None = None,
    workers: int | None = None,
) -> IssuedTree:
    """Sign every spec of ``the_plan``, creating whichever CAs ``cas`` does not provide.

    Existing CAs (cert, key) are checked to belong together and reused as they are, so that a
    re-issue keeps trust with the nodes already running. The ``sa`` key pair is generated unless
    given.
    """
    cas = dict(cas or {})
    for name, (cert, key) in cas.items():
        require_key_matches(key, cert, f"{name} key")
    ca_list = [s for s in the_plan.specs if s.is_ca]
    leaf_list = [s for s in the_plan.specs if not s.is_ca]
    missing = [s for s in ca_list if s.name not in cas]
    keys = generate_keys(
        the_plan.key_algorithm, len(missing) + len(leaf_list) + (sa_key is None), workers
    )
    issued_cas: dict[str, Issued] = {}
    for spec in ca_list:
        if spec.name in cas:
            cert, key = cas[spec.name]
        else:
            key = keys.pop()
            cert = create_ca(spec, key, now)
        issued_cas[spec.name] = Issued(spec, cert, key)
    leaves: dict[tuple[str, str | None], Issued] = {}
    for spec in leaf_list:
        signer = issued_cas.get(spec.signer or "")
        if signer is None:
            raise PKIError(f"{spec.name}: its signer {spec.signer!r} is not in the plan")
        key = keys.pop()
        cert = sign_certificate(spec, key.public_key(), signer.cert, signer.key, now)
        leaves[spec.key] = Issued(spec, cert, key)
    return IssuedTree(cas=issued_cas, leaves=leaves, sa_key=sa_key or keys.pop())


def kubeconfig_text(cluster: ClusterSpec, tree: IssuedTree, name: str, node: NodeSpec) -> str:
    """The kubeconfig file ``name`` of ``node`` exactly as kubeadm writes it."""
    issued = tree.get(name, node.name)
    return kubeconfig_mod.render_kubeconfig(
        cluster_name=cluster.cluster_name,
        server=kubeconfig_server(cluster, node, name),
        ca_cert_pem=tree.cas[CA].cert_pem,
        client_cert_pem=issued.cert_pem,
        client_key_pem=issued.key_pem,
        user=issued.spec.common_name,
    )


def covers(cert: x509.Certificate, spec: CertSpec) -> list[str]:
    """SANs ``spec`` requires that ``cert`` does not cover (as a Go client would judge it)."""
    wanted = [*spec.dns_names, *spec.ip_addresses]
    return [name for name in wanted if not check_host(cert, name).covered]


def with_validity(spec: CertSpec, validity: dt.timedelta) -> CertSpec:
    """Copy of ``spec`` with another validity (for renewals with a shorter remaining CA life)."""
    return replace(spec, validity=validity)


# --------------------------------------------------------------------------- node bundles

KEY_MODE = 0o600
CERT_MODE = 0o644


@dataclass(frozen=True)
class NodeFile:
    """One file of a node's ``/etc/kubernetes`` tree."""

    content: bytes
    mode: int


def _pair(files: dict[str, NodeFile], path: str, issued: Issued, with_key: bool = True) -> None:
    files[f"{path}.crt"] = NodeFile(issued.cert_pem, CERT_MODE)
    if with_key:
        files[f"{path}.key"] = NodeFile(issued.key_pem, KEY_MODE)


def node_files(cluster: ClusterSpec, tree: IssuedTree, node: NodeSpec) -> dict[str, NodeFile]:
    """The files kubeadm would have left in ``/etc/kubernetes`` on ``node``, by relative path.

    Keys and kubeconfigs are 0600, certificates and ``sa.pub`` 0644. Control-plane nodes hold the
    shared CA and ``sa`` keys; workers only ``pki/ca.crt`` and ``kubelet.conf``; external etcd
    members their etcd certificates. With external etcd the control plane gets the etcd CA
    certificate (to verify the members) but not its key.
    """
    files: dict[str, NodeFile] = {}
    stacked = cluster.etcd_topology == TOPOLOGY_STACKED
    if node.role == ROLE_CONTROL_PLANE:
        for name in (CA, FRONT_PROXY_CA):
            _pair(files, f"pki/{name}", tree.cas[name])
        _pair(files, "pki/etcd/ca", tree.cas[ETCD_CA], with_key=stacked)
        files["pki/sa.key"] = NodeFile(private_key_to_pem(tree.sa_key), KEY_MODE)
        files["pki/sa.pub"] = NodeFile(public_key_to_pem(tree.sa_key), CERT_MODE)
        shared = ["apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client"]
        if stacked:
            shared.append("etcd/healthcheck-client")
        for name in shared:
            _pair(files, f"pki/{name}", tree.get(name))
        per_node = ["apiserver"] + (["etcd/server", "etcd/peer"] if stacked else [])
        for name in per_node:
            _pair(files, f"pki/{name}", tree.get(name, node.name))
        for name in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"):
            files[name] = NodeFile(kubeconfig_text(cluster, tree, name, node).encode(), KEY_MODE)
    elif node.role == ROLE_ETCD:
        _pair(files, "pki/etcd/ca", tree.cas[ETCD_CA], with_key=False)
        for name in ("etcd/server", "etcd/peer"):
            _pair(files, f"pki/{name}", tree.get(name, node.name))
        _pair(files, "pki/etcd/healthcheck-client", tree.get("etcd/healthcheck-client"))
    else:
        _pair(files, "pki/ca", tree.cas[CA], with_key=False)
    if node.role in (ROLE_CONTROL_PLANE, ROLE_WORKER):
        files["kubelet.conf"] = NodeFile(
            kubeconfig_text(cluster, tree, "kubelet.conf", node).encode(), KEY_MODE
        )
    return files
