"""Which Kubernetes identities a certificate or a token grants, and which of them are privileged.

The API server reads a client certificate's CN as the user name and each O as a group
(docs/kubeadm.md §2); a row of the static token file names a user and its groups (§7); a bootstrap
token authenticates as ``system:bootstrap:<id>`` in ``system:bootstrappers`` and its extra groups
(§3). Some names are not ordinary users: ``system:masters`` bypasses RBAC, kubeadm binds
``kubeadm:cluster-admins`` to cluster-admin, and the identities of the cluster's own components
(kubelets, the controller manager, the scheduler, kube-proxy, the API server, service accounts)
are what the built-in RBAC roles and the Node authorizer trust. This module says, for a requested
identity, which parts are privileged and why; who may obtain them is the panel's decision
(``pki.services.identities``).

A certificate from another CA than the cluster CA is privileged whatever its subject: etcd trusts
every client certificate of etcd-ca, and the API server lets a client of front-proxy-ca speak for
any user. A server certificate for one of the API server's names lets its holder pose as the API
server to every client that trusts the cluster CA.

Names are compared after trimming and case folding: the API server compares them exactly, but a
near-copy of a privileged name is refused rather than left to confuse a reader of RBAC bindings.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pki.domain import health_identity, kubeadm
from pki.domain.tokens import EXTRA_GROUP_RE
from pki.domain.x509 import PKIError

Kind = Literal["user", "group", "authority", "host"]


class Door(StrEnum):
    """How an identity is handed out; the rules differ slightly per door."""

    KUBECONFIG = "kubeconfig"  # a user's own client certificate from the cluster CA
    CERTIFICATE = "certificate"  # a certificate signed from a request (cfssl), any cluster CA
    # Names of doors, not credentials.
    STATIC_TOKEN = "static-token"  # noqa: S105 - a row of the API server's --token-auth-file
    BOOTSTRAP_TOKEN = "bootstrap-token"  # noqa: S105 - a bootstrap token's extra groups


@dataclass(frozen=True)
class Finding:
    """One privileged part of a requested identity. ``reason`` starts with the name it is about;
    ``never`` marks what nobody is given through this door (kubeadm's own rules)."""

    kind: Kind
    name: str
    reason: str
    never: bool = False

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


MASTERS = kubeadm.MASTERS_GROUP
CLUSTER_ADMINS = kubeadm.CLUSTER_ADMINS_GROUP
NODES = kubeadm.NODES_GROUP
SYSTEM_PREFIX = "system:"

# Groups, exactly.
_GROUPS = {
    MASTERS: f"{MASTERS} bypasses RBAC",
    CLUSTER_ADMINS: f"{CLUSTER_ADMINS} is bound to cluster-admin by kubeadm",
    NODES: (
        f"{NODES} is the kubelets' group: the Node authorizer lets it read the Secrets of the "
        "pods on its nodes"
    ),
    "system:serviceaccounts": (
        "system:serviceaccounts is the group of every service account, which the API server "
        "gives only to its own tokens"
    ),
    "system:bootstrappers": (
        "system:bootstrappers is the group of bootstrap tokens, whose requests for node client "
        "certificates are approved automatically"
    ),
}
# Groups by prefix: (prefix, what the name is).
_GROUP_PREFIXES = (
    (
        "system:serviceaccounts:",
        "is the group of a namespace's service accounts, which the API server gives only to its "
        "own tokens",
    ),
    (
        "system:bootstrappers:",
        "is a bootstrap token group, whose requests for node client certificates are approved "
        "automatically",
    ),
)
# Every authenticated user is in it anyway: asking for it grants nothing.
_HARMLESS_SYSTEM_GROUPS = frozenset({"system:authenticated"})

# Users, exactly.
_USERS = {
    "system:kube-controller-manager": (
        "system:kube-controller-manager is the controller manager's identity, which may read "
        "every Secret and create tokens for every service account"
    ),
    "system:kube-scheduler": (
        "system:kube-scheduler is the scheduler's identity, which places and evicts every pod"
    ),
    "system:kube-proxy": "system:kube-proxy is kube-proxy's identity (system:node-proxier)",
    "system:apiserver": "system:apiserver is the API server's own identity, in system:masters",
    "kubernetes": (
        "kubernetes is the API server's client identity in binary installs, which the kubelets "
        "trust"
    ),
    "kubernetes-admin": "kubernetes-admin is the user of kubeadm's admin.conf",
    "kubernetes-super-admin": "kubernetes-super-admin is the user of kubeadm's super-admin.conf",
}
_USER_PREFIXES = (
    (
        "system:node:",
        "is a kubelet's identity: the Node authorizer lets it read the Secrets of the pods on "
        "that node",
    ),
    (
        "system:serviceaccount:",
        "is a service account's identity, which the API server gives only to its own tokens",
    ),
    ("system:bootstrap:", "is a bootstrap token's identity"),
    ("kube-apiserver", "is the API server's client identity, which the kubelets and etcd trust"),
)
_RESERVED = "names under system: are reserved for Kubernetes' own identities"
# The panel's own identities: nobody obtains them through any door, not even an admin.
_PANEL_USERS = {
    health_identity.USER: (
        "is the panel's own health-check identity and is never handed out; choose another user name"
    ),
}

_AUTHORITIES = {
    kubeadm.ETCD_CA: (
        f"a certificate from {kubeadm.ETCD_CA} opens etcd, which holds every object and Secret of "
        "the cluster"
    ),
    kubeadm.FRONT_PROXY_CA: (
        f"a certificate from {kubeadm.FRONT_PROXY_CA} lets its holder tell the API server which "
        "user and groups it acts for"
    ),
}

_KUBECONFIG_MASTERS = (
    f"{MASTERS} bypasses RBAC and is never given to users: that identity exists only as "
    "super-admin.conf; bind a role to the user or one of its groups instead"
)
_BOOTSTRAP_GROUPS = (
    "a bootstrap token's groups must match system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9] "
    "(kubeadm's rule)"
)


def _normal(name: str) -> str:
    return name.strip().casefold()


def group_reason(group: str, door: Door = Door.CERTIFICATE) -> str | None:
    """Why ``group`` is privileged through ``door``, or None for an ordinary group."""
    name = _normal(group)
    if door == Door.BOOTSTRAP_TOKEN and name.startswith("system:bootstrappers:"):
        return None  # what bootstrap tokens are for
    if name in _GROUPS:
        return _GROUPS[name]
    for prefix, what in _GROUP_PREFIXES:
        if name.startswith(prefix):
            return f"{group.strip()} {what}"
    if name.startswith(SYSTEM_PREFIX) and name not in _HARMLESS_SYSTEM_GROUPS:
        return f"{group.strip()}: {_RESERVED}"
    return None


def panel_user_reason(user: str) -> str | None:
    """Why the user name is one of the panel's own identities (never handed out), or None."""
    what = _PANEL_USERS.get(_normal(user))
    return f"{user.strip()} {what}" if what is not None else None


def user_reason(user: str) -> str | None:
    """Why the user name (a certificate's CN, a token's user) is privileged, or None."""
    name = _normal(user)
    panel = panel_user_reason(user)
    if panel is not None:
        return panel
    if name in _USERS:
        return _USERS[name]
    for prefix, what in _USER_PREFIXES:
        if name.startswith(prefix):
            return f"{user.strip()} {what}"
    if name.startswith(SYSTEM_PREFIX):
        return f"{user.strip()}: {_RESERVED}"
    return None


def authority_reason(authority: str | None) -> str | None:
    """Why signing with the CA ``authority`` is privileged whatever the subject, or None."""
    return _AUTHORITIES.get(authority or kubeadm.CA)


def _host_key(host: str) -> str:
    text = host.strip().rstrip(".").casefold()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def apiserver_hosts(cluster: kubeadm.ClusterSpec) -> frozenset[str]:
    """The names the cluster's API servers answer to: the ``kubernetes`` Service names, its IP,
    the controlPlaneEndpoint host, the extra SANs and every control-plane node's name and address
    (kubeadm's apiserver SANs, docs/kubeadm.md §1), whether or not they are issued yet."""
    names = {
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
        *cluster.extra_sans,
    }
    with contextlib.suppress(PKIError, ValueError):  # an impossible subnet has no Service IP
        names.add(kubeadm.first_service_ip(cluster.service_subnet))
    if cluster.control_plane_endpoint:
        try:
            names.add(kubeadm.split_host_port(cluster.control_plane_endpoint)[0])
        except PKIError:
            names.add(cluster.control_plane_endpoint)  # not host:port; protect it as it is
    for node in cluster.nodes:
        if node.role == kubeadm.ROLE_CONTROL_PLANE:
            names.update((node.name, node.address))
    return frozenset(_host_key(name) for name in names if name)


def _covers(san: str, host: str) -> bool:
    """Whether a SAN (possibly ``*.`` wildcard) covers ``host``, as a TLS client matches it."""
    if san == host:
        return True
    if san.startswith("*.") and "." in host:
        return host.split(".", 1)[1] == san[2:]
    return False


def host_reason(host: str, protected: Iterable[str]) -> str | None:
    """Why a server certificate's SAN ``host`` is privileged, or None."""
    key = _host_key(host)
    for name in protected:
        if _covers(key, name):
            return (
                f"{host.strip()} is a name of the API server: a server certificate for it lets "
                "its holder pose as the API server"
            )
    return None


def assess(
    door: Door,
    *,
    user: str = "",
    groups: Sequence[str] = (),
    authority: str | None = None,
    hosts: Sequence[str] = (),
    serves: bool = False,
    protected_hosts: Iterable[str] = (),
) -> tuple[Finding, ...]:
    """Every privileged part of an identity handed out through ``door``, in request order.

    ``user`` is the certificate's CN or the token's user, ``groups`` its O values or token
    groups; for certificates ``authority`` names the signing CA, ``hosts`` the SANs, and
    ``serves`` says whether the certificate is good for server authentication (then SANs naming
    ``protected_hosts``, see ``apiserver_hosts``, are privileged).
    """
    findings: list[Finding] = []
    if door in (Door.CERTIFICATE, Door.KUBECONFIG):
        reason = authority_reason(authority)
        if reason is not None:
            findings.append(Finding("authority", authority or "", reason))
    if user:
        reason = user_reason(user)
        if reason is not None:
            never = panel_user_reason(user) is not None
            findings.append(Finding("user", user, reason, never=never))
    for group in dict.fromkeys(groups):
        if door == Door.BOOTSTRAP_TOKEN and not EXTRA_GROUP_RE.match(group):
            findings.append(Finding("group", group, _BOOTSTRAP_GROUPS, never=True))
            continue
        if door == Door.KUBECONFIG and _normal(group) == MASTERS:
            findings.append(Finding("group", group, _KUBECONFIG_MASTERS, never=True))
            continue
        reason = group_reason(group, door)
        if reason is not None:
            findings.append(Finding("group", group, reason))
    if serves and door == Door.CERTIFICATE:
        protected = frozenset(_host_key(name) for name in protected_hosts)
        for host in dict.fromkeys(hosts):
            reason = host_reason(host, protected)
            if reason is not None:
                findings.append(Finding("host", host, reason))
    return tuple(findings)


NODE_USER_PREFIX = "system:node:"
KUBE_PROXY_USER = "system:kube-proxy"


def worker_own_identity(node_role: str, node_name: str, user: str, groups: Sequence[str]) -> bool:
    """Whether a client certificate (CN ``user``, O ``groups``) found in a file of the node is one
    of the worker's own identities: its kubelet's ``system:node:<node_name>`` in exactly
    ``system:nodes``, or kube-proxy's ``system:kube-proxy`` in no group.

    These are what a worker holds to join the cluster (kubeadm's worker bundle is ``ca.crt`` and
    the node's own ``kubelet.conf``), so handing them out for that node is the worker-bundle rule
    rather than a grant of a privileged identity. Compared exactly, as the API server does: any
    other group, another node's name or another node role is no worker's own identity.
    """
    if node_role != kubeadm.ROLE_WORKER:
        return False
    if user == f"{NODE_USER_PREFIX}{node_name}":
        return tuple(groups) == (NODES,)
    return user == KUBE_PROXY_USER and not groups


def refusal(finding: Finding) -> str:
    """The message for someone who may not obtain ``finding``."""
    if finding.never:
        return finding.reason
    return f"{finding.reason}; only an admin may grant it"
