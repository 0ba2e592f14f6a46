"""The flags of each component that name a certificate, key or kubeconfig, and what they name.

The one table the binary-cluster import (``pki.domain.binary_import``) follows: for each service
of ``pki.domain.binary_layout``, flag name (without dashes) → ``Use(what, target)``, where
``what`` says whether the file is a CA to trust, a leaf certificate or its key, the CA's signing
pair, a service-account key, a kubeconfig or a component config file, and ``target`` is the
ledger name it fills (a CA role, a ``CERTS`` name, ``service-account``). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass

from pki.domain import kubeadm
from pki.domain.binary_layout import (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    KUBELET,
    SERVICE_ACCOUNT,
)

CA_ROLES = (kubeadm.CA, kubeadm.FRONT_PROXY_CA, kubeadm.ETCD_CA)

# What a flag's file is: a CA to trust, a leaf certificate or its key, the CA's signing pair,
# the service-account keys, a kubeconfig, or a component config file naming more files.
CA_CERT = "ca"
SIGNING_CERT = "signing-cert"
SIGNING_KEY = "signing-key"
CERT = "cert"
KEY = "key"
SA_PUBLIC = "sa-public"
SA_PRIVATE = "sa-private"
KUBECONFIG = "kubeconfig"
CONFIG = "config"


@dataclass(frozen=True)
class Use:
    """What a flag's file is (``what``) and the ledger name it fills (``target``)."""

    what: str
    target: str


def _pair(name: str, cert_flag: str, key_flag: str) -> dict[str, Use]:
    return {cert_flag: Use(CERT, name), key_flag: Use(KEY, name)}


_COMMON_AUTH = {
    "client-ca-file": Use(CA_CERT, kubeadm.CA),
    "requestheader-client-ca-file": Use(CA_CERT, kubeadm.FRONT_PROXY_CA),
}
FLAGS: dict[str, dict[str, Use]] = {
    KUBE_APISERVER: {
        **_COMMON_AUTH,
        **_pair("kubernetes", "tls-cert-file", "tls-private-key-file"),
        **_pair("apiserver-etcd-client", "etcd-certfile", "etcd-keyfile"),
        **_pair("apiserver-kubelet-client", "kubelet-client-certificate", "kubelet-client-key"),
        **_pair("proxy-client", "proxy-client-cert-file", "proxy-client-key-file"),
        "etcd-cafile": Use(CA_CERT, kubeadm.ETCD_CA),
        "kubelet-certificate-authority": Use(CA_CERT, kubeadm.CA),
        "service-account-key-file": Use(SA_PUBLIC, SERVICE_ACCOUNT),
        "service-account-signing-key-file": Use(SA_PRIVATE, SERVICE_ACCOUNT),
    },
    ETCD: {
        **_pair("etcd-server", "cert-file", "key-file"),
        **_pair("etcd-peer", "peer-cert-file", "peer-key-file"),
        "trusted-ca-file": Use(CA_CERT, kubeadm.ETCD_CA),
        "peer-trusted-ca-file": Use(CA_CERT, kubeadm.ETCD_CA),
    },
    KUBE_CONTROLLER_MANAGER: {
        **_COMMON_AUTH,
        **_pair(KUBE_CONTROLLER_MANAGER, "tls-cert-file", "tls-private-key-file"),
        "cluster-signing-cert-file": Use(SIGNING_CERT, kubeadm.CA),
        "cluster-signing-key-file": Use(SIGNING_KEY, kubeadm.CA),
        "root-ca-file": Use(CA_CERT, kubeadm.CA),
        "service-account-private-key-file": Use(SA_PRIVATE, SERVICE_ACCOUNT),
        "kubeconfig": Use(KUBECONFIG, KUBE_CONTROLLER_MANAGER),
        "authentication-kubeconfig": Use(KUBECONFIG, KUBE_CONTROLLER_MANAGER),
        "authorization-kubeconfig": Use(KUBECONFIG, KUBE_CONTROLLER_MANAGER),
    },
    KUBE_SCHEDULER: {
        **_COMMON_AUTH,
        **_pair(KUBE_SCHEDULER, "tls-cert-file", "tls-private-key-file"),
        "kubeconfig": Use(KUBECONFIG, KUBE_SCHEDULER),
        "authentication-kubeconfig": Use(KUBECONFIG, KUBE_SCHEDULER),
        "authorization-kubeconfig": Use(KUBECONFIG, KUBE_SCHEDULER),
    },
    KUBELET: {
        "client-ca-file": Use(CA_CERT, kubeadm.CA),
        **_pair("kubelet-server", "tls-cert-file", "tls-private-key-file"),
        "kubeconfig": Use(KUBECONFIG, "kubelet-client"),
        "config": Use(CONFIG, KUBELET),
    },
    KUBE_PROXY: {
        "kubeconfig": Use(KUBECONFIG, KUBE_PROXY),
        "config": Use(CONFIG, KUBE_PROXY),
    },
}
# Keys of the component config files (kubelet --config, kube-proxy --config), as flags.
CONFIG_KEYS: dict[str, dict[tuple[str, ...], Use]] = {
    KUBELET: {
        ("authentication", "x509", "clientCAFile"): Use(CA_CERT, kubeadm.CA),
        ("tlsCertFile",): Use(CERT, "kubelet-server"),
        ("tlsPrivateKeyFile",): Use(KEY, "kubelet-server"),
    },
    KUBE_PROXY: {("clientConnection", "kubeconfig"): Use(KUBECONFIG, KUBE_PROXY)},
}
