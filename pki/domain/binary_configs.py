"""The kubelet and kube-proxy configuration files of a binary-installed node.

``KubeletConfiguration`` (kubelet.config.k8s.io/v1beta1) and ``KubeProxyConfiguration``
(kubeproxy.config.k8s.io/v1alpha1), written with ``pki.domain.yaml`` so that no value is read back
by go-yaml as something else. The kubelet serves with the certificate the panel issues
(``kubelet-server``) and does not rotate its certificates: a rotated certificate would be one the
panel's ledger does not know. Pure Python: no Django, no I/O.
"""

from __future__ import annotations

from typing import Any

from pki.domain.binary_layout import CA_FILES, KUBE_PROXY
from pki.domain.binary_spec import BinarySpec, cluster_dns_ip
from pki.domain.kubeadm import CA, NodeSpec
from pki.domain.yaml import dump_document

KUBELET_API_VERSION = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY_API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ = "0.0.0.0:10256"
KUBE_PROXY_METRICS = "127.0.0.1:10249"


def kubelet_config(spec: BinarySpec, node: NodeSpec) -> str:
    """The kubelet's ``--config`` file: client certificates from the cluster CA, webhook
    authentication and authorization, no anonymous access to the kubelet API (port 10250)."""
    layout = spec.layout
    document: dict[str, Any] = {
        "apiVersion": KUBELET_API_VERSION,
        "kind": "KubeletConfiguration",
        "address": "0.0.0.0",  # noqa: S104 - the kubelet API (10250) serves the apiserver
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "2m0s"},
            "x509": {"clientCAFile": layout.pem(CA_FILES[CA])},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "5m0s", "cacheUnauthorizedTTL": "30s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [cluster_dns_ip(spec.cluster.service_subnet)],
        "clusterDomain": spec.cluster.dns_domain,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "tlsCertFile": layout.pem("kubelet-server"),
        "tlsPrivateKeyFile": layout.key("kubelet-server"),
    }
    return dump_document(document)


def kube_proxy_config(spec: BinarySpec, node: NodeSpec) -> str:
    """kube-proxy's ``--config`` file: its kubeconfig, the pod network (traffic from outside it
    is masqueraded), the proxy mode and, for IPVS, the scheduler."""
    document: dict[str, Any] = {
        "apiVersion": KUBE_PROXY_API_VERSION,
        "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",  # noqa: S104 - kube-proxy serves NodePorts on every address
        "clientConnection": {"kubeconfig": spec.layout.kubeconfig(KUBE_PROXY)},
    }
    if spec.pod_subnet:
        document["clusterCIDR"] = spec.pod_subnet
    document.update(
        {
            "healthzBindAddress": KUBE_PROXY_HEALTHZ,
            "hostnameOverride": node.name,
            "metricsBindAddress": KUBE_PROXY_METRICS,
            "mode": spec.kube_proxy_mode,
        }
    )
    if spec.kube_proxy_mode == "ipvs":
        document["ipvs"] = {"scheduler": spec.ipvs_scheduler}
    return dump_document(document)
