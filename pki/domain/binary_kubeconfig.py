"""The kubeconfigs of a binary-installed cluster, as ``kubectl config`` writes them.

Binary installs build each kubeconfig with four commands::

    kubectl config set-cluster <cluster> --certificate-authority=ca.pem --embed-certs=true \\
        --server=<url> --kubeconfig=X
    kubectl config set-credentials <user> --client-certificate=<name>.pem \\
        --client-key=<name>-key.pem --embed-certs=true --kubeconfig=X
    kubectl config set-context default --cluster=<cluster> --user=<user> --kubeconfig=X
    kubectl config use-context default --kubeconfig=X

kubectl writes through the same ``clientcmd.Write`` as kubeadm (keys sorted, certificates embedded
as base64 ``*-data``), so ``pki.domain.kubeconfig.render_kubeconfig`` gives the same text with the
context named ``default``. Pure Python: no Django, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from pki.domain.binary_layout import (
    ADMIN,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBELET,
)
from pki.domain.binary_spec import BinarySpec, control_plane_url, local_api_url
from pki.domain.kubeadm import ROLE_CONTROL_PLANE, ROLE_WORKER, NodeSpec
from pki.domain.kubeconfig import render_kubeconfig

CONTEXT = "default"


@dataclass(frozen=True)
class BinaryKubeconfig:
    """One kubeconfig: its file name (``<name>.kubeconfig``), the certificate it embeds (file
    base in ``binary_layout.CERTS``), the roles of the nodes that get it, and whether it talks to
    the node's own apiserver over loopback."""

    name: str
    cert: str
    roles: tuple[str, ...]
    local: bool = False

    def user(self, node: NodeSpec) -> str:
        """The user entry's name: the certificate's common name."""
        return _USERS[self.name].format(node=node.name)


_USERS = {
    KUBELET: "system:node:{node}",
    KUBE_PROXY: "system:kube-proxy",
    KUBE_CONTROLLER_MANAGER: "system:kube-controller-manager",
    KUBE_SCHEDULER: "system:kube-scheduler",
    ADMIN: "admin",
}
_KUBELET_NODES = (ROLE_CONTROL_PLANE, ROLE_WORKER)
KUBECONFIGS: tuple[BinaryKubeconfig, ...] = (
    BinaryKubeconfig(KUBELET, "kubelet-client", _KUBELET_NODES),
    BinaryKubeconfig(KUBE_PROXY, KUBE_PROXY, _KUBELET_NODES),
    # controller-manager and scheduler run beside an apiserver and talk to it over loopback:
    # they keep working while the load balancer or the other control-plane nodes are down, and
    # need no endpoint before the first apiserver is up. (``kubernetes.pem`` carries 127.0.0.1.)
    BinaryKubeconfig(KUBE_CONTROLLER_MANAGER, KUBE_CONTROLLER_MANAGER, (ROLE_CONTROL_PLANE,), True),
    BinaryKubeconfig(KUBE_SCHEDULER, KUBE_SCHEDULER, (ROLE_CONTROL_PLANE,), True),
    BinaryKubeconfig(ADMIN, ADMIN, (ROLE_CONTROL_PLANE,)),
)
KUBECONFIGS_BY_NAME = {kubeconfig.name: kubeconfig for kubeconfig in KUBECONFIGS}


def node_kubeconfigs(node: NodeSpec) -> list[BinaryKubeconfig]:
    """The kubeconfigs ``node`` holds, by its role."""
    return [kubeconfig for kubeconfig in KUBECONFIGS if node.role in kubeconfig.roles]


def server(spec: BinarySpec, kubeconfig: BinaryKubeconfig) -> str:
    """The API server URL written into ``kubeconfig``."""
    return local_api_url(spec) if kubeconfig.local else control_plane_url(spec)


def render(
    spec: BinarySpec,
    kubeconfig: BinaryKubeconfig,
    node: NodeSpec,
    *,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
) -> str:
    """The kubeconfig text, byte for byte what the four ``kubectl config`` commands write."""
    return render_kubeconfig(
        cluster_name=spec.cluster.cluster_name,
        server=server(spec, kubeconfig),
        ca_cert_pem=ca_pem,
        client_cert_pem=cert_pem,
        client_key_pem=key_pem,
        user=kubeconfig.user(node),
        context=CONTEXT,
    )
