"""The certificate plan of a binary-installed cluster: CN, O, usages and SANs of every file.

The same topology as kubeadm's plan (``pki.domain.kubeadm.ClusterSpec``) gives the files of
``pki.domain.binary_layout.CERTS``, signed by the same three CAs, with the validity of the cfssl
profile each one is signed with (``ca-config.json``'s ``signing.profiles``). Names follow the
layout table, so a ledger row, a file base and a plan entry are one name.

Identities are least-privilege: the API server's client certificate for the kubelets is
``kube-apiserver-kubelet-client`` without ``system:masters`` (RBAC binds it to the built-in
ClusterRole ``system:kubelet-api-admin``), and only ``admin`` is in ``system:masters``.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pki.domain import kubeadm
from pki.domain.binary_layout import (
    ADMIN,
    CERTS,
    CERTS_BY_NAME,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    PROFILE_CLIENT,
    PROFILE_PEER,
    PROFILE_SERVER,
    BinaryCert,
    holds,
)
from pki.domain.cfssl import SigningProfile
from pki.domain.kubeadm import (
    ROLE_CONTROL_PLANE,
    ROLE_ETCD,
    ROLE_WORKER,
    TOPOLOGY_STACKED,
    ClusterSpec,
    NodeSpec,
    Plan,
)
from pki.domain.x509 import USAGE_CLIENT, USAGE_SERVER, CertSpec, PKIError

# The extended key usages each profile must grant, as the plan's usages.
PROFILE_USAGES: dict[str, tuple[str, ...]] = {
    PROFILE_SERVER: (USAGE_SERVER,),
    PROFILE_CLIENT: (USAGE_CLIENT,),
    PROFILE_PEER: (USAGE_SERVER, USAGE_CLIENT),
}
_CFSSL_EKU = {USAGE_SERVER: "server auth", USAGE_CLIENT: "client auth"}

# CN and O of the certificates that are not per node.
KUBELET_API_ADMIN_ROLE = "system:kubelet-api-admin"
SHARED_SUBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "etcd-healthcheck-client": ("kube-etcd-healthcheck-client", ()),
    "apiserver-etcd-client": ("kube-apiserver-etcd-client", ()),
    # Not "kubernetes": that is the cluster CA's CN, and a leaf with its CA's subject looks
    # self-issued to openssl, which then refuses to verify it.
    "kubernetes": ("kube-apiserver", ()),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ()),
    "proxy-client": ("front-proxy-client", ()),
    KUBE_CONTROLLER_MANAGER: ("system:kube-controller-manager", ()),
    KUBE_SCHEDULER: ("system:kube-scheduler", ()),
    KUBE_PROXY: ("system:kube-proxy", ()),
    ADMIN: ("admin", (kubeadm.MASTERS_GROUP,)),
}


def profile_usages(name: str, profile: SigningProfile | None) -> tuple[str, ...]:
    """The usages a certificate signed with profile ``name`` gets; PKIError when the profile's
    cfssl usages lack the extended key usage the files of that profile need."""
    wanted = PROFILE_USAGES[name]
    if profile is not None:
        lacking = [_CFSSL_EKU[u] for u in wanted if _CFSSL_EKU[u] not in profile.usages]
        if lacking and "any" not in profile.usages:
            raise PKIError(
                f"signing profile {name!r} must include {', '.join(repr(u) for u in lacking)}: "
                "its certificates are used for that"
            )
    return wanted


def validity_of(
    cert: BinaryCert, profiles: Mapping[str, SigningProfile], fallback: dt.timedelta
) -> dt.timedelta:
    """The profile's expiry, else the cluster's certificate validity."""
    profile = profiles.get(cert.profile)
    return profile.expiry if profile is not None else fallback


def etcd_members(cluster: ClusterSpec) -> list[NodeSpec]:
    """The nodes that run etcd: the control-plane nodes when stacked, else the etcd nodes."""
    role = ROLE_CONTROL_PLANE if cluster.etcd_topology == TOPOLOGY_STACKED else ROLE_ETCD
    return cluster.nodes_with_role(role)


def is_etcd_member(cluster: ClusterSpec, node: NodeSpec) -> bool:
    return any(member.name == node.name for member in etcd_members(cluster))


def etcd_sans(node: NodeSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """DNS and IP SANs of an etcd member's server and peer certificates: as kubeadm's, the
    member's name and address with both loopbacks (a client may reach localhost over IPv6)."""
    address = kubeadm.node_address(node)
    return (node.name, "localhost"), tuple(dict.fromkeys((address, "127.0.0.1", "::1")))


def apiserver_sans(cluster: ClusterSpec) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """DNS SANs, IP SANs and warnings of ``kubernetes``, the one serving certificate every
    kube-apiserver presents: every control-plane node's name and address, the control-plane
    endpoint, the first service IP, the ``kubernetes`` Service names, loopback and extra SANs."""
    warnings: list[str] = []
    control_planes = cluster.nodes_with_role(ROLE_CONTROL_PLANE)
    dns = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
        *(node.name for node in control_planes),
    ]
    ips = [kubeadm.first_service_ip(cluster.service_subnet)]
    ips += [kubeadm.node_address(node) for node in control_planes]
    if cluster.control_plane_endpoint:
        host, _ = kubeadm.split_host_port(cluster.control_plane_endpoint)
        if kubeadm.parse_ip(host) is not None:
            ips.append(str(kubeadm.parse_ip(host)))
        else:
            dns.append(host)
    ips.append("127.0.0.1")
    extra_dns: list[str] = []
    extra_ips: list[str] = []
    kubeadm.append_sans(extra_dns, extra_ips, cluster.extra_sans, "kubernetes", warnings)
    dns_out = tuple(sorted(set(dns + extra_dns)))
    return dns_out, tuple(dict.fromkeys(ips + extra_ips)), warnings


def _spec(
    cert: BinaryCert,
    cluster: ClusterSpec,
    profiles: Mapping[str, SigningProfile],
    common_name: str,
    organizations: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    node: str | None = None,
) -> CertSpec:
    return CertSpec(
        cert.name,
        cert.signer,
        common_name,
        organizations=organizations,
        dns_names=dns,
        ip_addresses=ips,
        usages=profile_usages(cert.profile, profiles.get(cert.profile)),
        node=node,
        validity=validity_of(cert, profiles, cluster.validity),
    )


def _per_node_specs(
    cert: BinaryCert, cluster: ClusterSpec, profiles: Mapping[str, SigningProfile]
) -> list[CertSpec]:
    if cert.name in ("etcd-server", "etcd-peer"):
        return [
            _spec(cert, cluster, profiles, node.name, (), *etcd_sans(node), node=node.name)
            for node in etcd_members(cluster)
        ]
    specs = []
    for node in cluster.nodes:
        if node.role not in (ROLE_CONTROL_PLANE, ROLE_WORKER):
            continue
        # The kubelet's serving certificate has the subject kubernetes.io/kubelet-serving wants.
        subject = f"system:node:{node.name}", (kubeadm.NODES_GROUP,)
        sans: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        if cert.name == "kubelet-server":
            sans = (node.name,), (kubeadm.node_address(node),)
        specs.append(_spec(cert, cluster, profiles, *subject, *sans, node=node.name))
    return specs


def plan(cluster: ClusterSpec, profiles: Mapping[str, SigningProfile] | None = None) -> Plan:
    """Every certificate of the binary layout: the three CAs, the shared files once (node None),
    then the per-node files, in the order of ``CERTS``. ``profiles`` are ``ca-config.json``'s
    signing profiles; a missing one signs with the cluster's validity."""
    profiles = dict(profiles or {})
    kubeadm.validate_topology(cluster)
    for name in PROFILE_USAGES:
        profile_usages(name, profiles.get(name))
    specs = kubeadm.ca_specs(cluster)
    warnings: list[str] = []
    for cert in CERTS:
        if cert.per_node:
            specs += _per_node_specs(cert, cluster, profiles)
            continue
        cn, orgs = SHARED_SUBJECTS[cert.name]
        dns: tuple[str, ...] = ()
        ips: tuple[str, ...] = ()
        if cert.name == "kubernetes":
            dns, ips, warnings = apiserver_sans(cluster)
        specs.append(_spec(cert, cluster, profiles, cn, orgs, dns, ips))
    if cluster.etcd_topology != TOPOLOGY_STACKED and not etcd_members(cluster):
        warnings.append(
            "external etcd topology without nodes of role 'etcd': no etcd server or peer "
            "certificates are planned"
        )
    for spec in specs:
        if not spec.is_ca and spec.validity > cluster.ca_validity:
            raise PKIError(
                f"{spec.name}: its profile's expiry ({spec.validity.days} days) exceeds the CA "
                f"validity ({cluster.ca_validity.days} days); certificates cannot outlive "
                "their CA"
            )
    return Plan(specs=specs, warnings=warnings, key_algorithm=cluster.key_algorithm)


def node_specs(the_plan: Plan, cluster: ClusterSpec, node: NodeSpec) -> list[CertSpec]:
    """The leaf specs whose files ``node`` holds (``binary_layout.holds``), shared then own."""
    member = is_etcd_member(cluster, node)
    held = {c.name for c in CERTS if holds(c, node.role, etcd_member=member)}
    return [
        spec
        for spec in the_plan.specs
        if not spec.is_ca
        and spec.name in held
        and (spec.node is None or spec.node == node.name)
        and (spec.node is not None or not CERTS_BY_NAME[spec.name].per_node)
    ]
