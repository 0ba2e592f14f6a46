"""Where a binary-installed cluster keeps its files, and which certificate each service uses.

Clusters installed without kubeadm run the components as systemd services with certificates signed
cfssl-style into one directory (``/etc/k8s/ssl``): ``name.pem``, ``name-key.pem`` and ``name.csr``
(``cfssljson -bare name``). This module is the single table that the certificate plan, the rendered
unit files, the jobs and the import all read, so a file name is decided in one place only.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pki.domain.kubeadm import (
    CA,
    ETCD_CA,
    FRONT_PROXY_CA,
    ROLE_CONTROL_PLANE,
    ROLE_ETCD,
    ROLE_WORKER,
)

# The profiles of a cfssl ``ca-config.json`` the plan signs with.
PROFILE_SERVER = "server"
PROFILE_CLIENT = "client"
PROFILE_PEER = "peer"
PROFILES = (PROFILE_SERVER, PROFILE_CLIENT, PROFILE_PEER)

# The services, in the order they are started (and restarted on upgrade): etcd first, then the
# apiserver, then what talks to it.
ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"
KUBE_CONTROLLER_MANAGER = "kube-controller-manager"
KUBE_SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
START_ORDER: tuple[tuple[str, ...], ...] = (
    (ETCD,),
    (KUBE_APISERVER,),
    (KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER),
    (KUBELET, KUBE_PROXY),
)
SERVICES = tuple(service for group in START_ORDER for service in group)

# The file base of each CA (the ledger keeps kubeadm's CA names).
CA_FILES = {CA: "ca", FRONT_PROXY_CA: "front-proxy-ca", ETCD_CA: "etcd-ca"}
SERVICE_ACCOUNT = "service-account"
ADMIN = "admin"


@dataclass(frozen=True)
class BinaryCert:
    """One certificate of the binary layout.

    ``name`` is both the ledger name and the file base (``name.pem`` / ``name-key.pem``);
    ``per_node`` certificates differ per node (their SANs or CN name the node) but keep the same
    file name on every node; ``holders`` are the node roles that receive the file, with ``etcd``
    meaning "the etcd members" (the control-plane nodes when etcd is stacked); ``services`` are the
    units whose flags or kubeconfig name the file.
    """

    name: str
    signer: str
    profile: str
    per_node: bool
    holders: tuple[str, ...]
    services: tuple[str, ...]


_CP = (ROLE_CONTROL_PLANE,)
_KUBELET_NODES = (ROLE_CONTROL_PLANE, ROLE_WORKER)
CERTS: tuple[BinaryCert, ...] = (
    BinaryCert("etcd-server", ETCD_CA, PROFILE_PEER, True, (ROLE_ETCD,), (ETCD,)),
    BinaryCert("etcd-peer", ETCD_CA, PROFILE_PEER, True, (ROLE_ETCD,), (ETCD,)),
    # What the panel's health checks and etcdctl present to etcd.
    BinaryCert("etcd-healthcheck-client", ETCD_CA, PROFILE_CLIENT, False, (ROLE_ETCD,), ()),
    BinaryCert("apiserver-etcd-client", ETCD_CA, PROFILE_CLIENT, False, _CP, (KUBE_APISERVER,)),
    BinaryCert("kubernetes", CA, PROFILE_SERVER, False, _CP, (KUBE_APISERVER,)),
    BinaryCert("apiserver-kubelet-client", CA, PROFILE_CLIENT, False, _CP, (KUBE_APISERVER,)),
    BinaryCert("proxy-client", FRONT_PROXY_CA, PROFILE_CLIENT, False, _CP, (KUBE_APISERVER,)),
    BinaryCert(KUBE_CONTROLLER_MANAGER, CA, PROFILE_CLIENT, False, _CP, (KUBE_CONTROLLER_MANAGER,)),
    BinaryCert(KUBE_SCHEDULER, CA, PROFILE_CLIENT, False, _CP, (KUBE_SCHEDULER,)),
    BinaryCert(KUBE_PROXY, CA, PROFILE_CLIENT, False, _KUBELET_NODES, (KUBE_PROXY,)),
    BinaryCert(ADMIN, CA, PROFILE_CLIENT, False, _CP, ()),
    BinaryCert("kubelet-client", CA, PROFILE_CLIENT, True, _KUBELET_NODES, (KUBELET,)),
    BinaryCert("kubelet-server", CA, PROFILE_SERVER, True, _KUBELET_NODES, (KUBELET,)),
)
CERTS_BY_NAME = {cert.name: cert for cert in CERTS}

# Which services run on a node of each role (etcd members also run etcd; see ``services_for``).
_ROLE_SERVICES = {
    ROLE_CONTROL_PLANE: (
        KUBE_APISERVER,
        KUBE_CONTROLLER_MANAGER,
        KUBE_SCHEDULER,
        KUBELET,
        KUBE_PROXY,
    ),
    ROLE_WORKER: (KUBELET, KUBE_PROXY),
    ROLE_ETCD: (ETCD,),
}


def services_for(role: str, *, etcd_member: bool) -> tuple[str, ...]:
    """The units a node runs, in start order; ``etcd_member`` adds etcd (stacked control planes)."""
    wanted = set(_ROLE_SERVICES.get(role, ()))
    if etcd_member:
        wanted.add(ETCD)
    return tuple(service for service in SERVICES if service in wanted)


def holds(cert: BinaryCert, role: str, *, etcd_member: bool) -> bool:
    """Whether a node of ``role`` receives ``cert`` (``etcd`` holders are the etcd members)."""
    if ROLE_ETCD in cert.holders and etcd_member:
        return True
    return role in cert.holders


@dataclass(frozen=True)
class BinaryLayout:
    """The directories of a binary install; every path the panel writes is derived here."""

    install_prefix: str = "/opt/kubernetes"
    cert_dir: str = "/etc/k8s/ssl"
    config_dir: str = "/etc/k8s"
    service_user: str = "kube"
    etcd_data_dir: str = "/var/lib/etcd"
    unit_dir: str = "/etc/systemd/system"

    def binary(self, name: str) -> str:
        """``<prefix>/bin/<name>`` (kube-apiserver, etcd, etcdctl, kubectl …)."""
        return posixpath.join(self.install_prefix, "bin", name)

    def pem(self, base: str) -> str:
        """The certificate (or, for the service account, public key) file ``<base>.pem``."""
        return posixpath.join(self.cert_dir, f"{base}.pem")

    def key(self, base: str) -> str:
        """The private key file ``<base>-key.pem``."""
        return posixpath.join(self.cert_dir, f"{base}-key.pem")

    def csr(self, base: str) -> str:
        """The request file ``<base>.csr`` that ``cfssljson -bare`` writes next to them."""
        return posixpath.join(self.cert_dir, f"{base}.csr")

    def ca_pem(self, ca: str) -> str:
        """The certificate file of one of the three CAs (kubeadm name: ``ca``, ``etcd/ca`` …)."""
        return self.pem(CA_FILES[ca])

    def kubeconfig(self, name: str) -> str:
        """``<config_dir>/<name>.kubeconfig`` (kubelet, kube-proxy, kube-scheduler, admin …)."""
        return posixpath.join(self.config_dir, f"{name}.kubeconfig")

    def config(self, name: str) -> str:
        """Any other file in the configuration directory (``audit-policy.yaml`` …)."""
        return posixpath.join(self.config_dir, name)

    def unit(self, service: str) -> str:
        """The systemd unit file of a service."""
        return posixpath.join(self.unit_dir, f"{service}.service")
