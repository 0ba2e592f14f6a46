"""Does the stored tree still fit the topology? Coverage, SAN checks and API endpoint checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodes.models import Cluster
from nodes.rules import validation
from pki.domain import kubeadm
from pki.domain.x509 import (
    CertSpec,
    HostCheck,
    check_host,
)
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
)
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.spec import apiserver_port, cluster_spec, current_plan, is_binary
from pki.services.certificates.store import active_tree


@dataclass
class StaleCertificate:
    """An active certificate that no longer covers the SANs its file needs."""

    certificate: Certificate
    missing_sans: list[str]
    spec: CertSpec


@dataclass
class CoverageReport:
    """How the stored tree compares with the current topology."""

    stale: list[StaleCertificate]
    missing: list[CertSpec]
    orphaned: list[Certificate]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.stale and not self.missing


def coverage(cluster: Cluster) -> CoverageReport:
    """Which files are missing, which no longer cover the topology's names, which are orphans."""
    the_plan = current_plan(cluster)
    existing = active_tree(cluster)
    stale, missing = [], []
    for spec in the_plan.specs:
        if spec.is_ca:
            continue
        row = existing.pop(spec.key, None)
        if row is None:
            missing.append(spec)
            continue
        gaps = kubeadm.covers(row.certificate, spec)
        if gaps:
            stale.append(StaleCertificate(row, gaps, spec))
    return CoverageReport(stale, missing, list(existing.values()), the_plan.warnings)


def check_san(certificate: Certificate | CertificateAuthority, host: str) -> HostCheck:
    """Would kubectl accept ``certificate`` for ``host``? Go's error text and the SAN to add."""
    host = host.strip()
    if not host:
        raise PKIInputError("give a host name or IP address", "host")
    try:
        host = validation.host(host)
    except ValueError as error:
        raise PKIInputError(str(error), "host") from None
    return check_host(certificate.certificate, host)


# In-cluster clients reach the apiservers through the ``kubernetes`` Service, which listens on 443
# and forwards to each apiserver's own port.
KUBERNETES_SERVICE_PORT = 443


def endpoint_checks(cluster: Cluster) -> list[dict[str, Any]]:
    """Every name clients use to reach the API, checked against every active apiserver cert,
    each with the health endpoint (``/livez``) a client would call through it: the
    controlPlaneEndpoint and the extra SANs (other names of it) on the endpoint's port, the
    ``kubernetes`` Service names on 443, a node's own address on the apiserver port."""
    spec = cluster_spec(cluster)
    port = apiserver_port(cluster)
    ports: dict[str, int] = {}
    if cluster.control_plane_endpoint:
        ports[cluster.endpoint_host] = cluster.endpoint_port
    for name in (
        kubeadm.first_service_ip(spec.service_subnet),
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
    ):
        ports.setdefault(name, KUBERNETES_SERVICE_PORT)
    endpoint_port = cluster.endpoint_port if cluster.control_plane_endpoint else port
    for name in spec.extra_sans:
        ports.setdefault(name, endpoint_port)
    results = []
    # A binary cluster's apiservers share one serving certificate, ``kubernetes``, that names
    # every control-plane address; kubeadm's have one ``apiserver`` per node.
    binary = is_binary(cluster)
    own = [n.address for n in spec.nodes if n.role == kubeadm.ROLE_CONTROL_PLANE] if binary else []
    for row in Certificate.objects.tree().filter(
        cluster=cluster, name="kubernetes" if binary else "apiserver"
    ):
        hosts = dict(ports)
        for address in own:
            hosts.setdefault(address, port)
        if row.node is not None:
            hosts.setdefault(str(row.node.address), port)
        for host, host_port in hosts.items():
            outcome = check_host(row.certificate, host)
            results.append(
                {
                    "certificate": row.pk,
                    "node": row.node_name,
                    "host": host,
                    "port": host_port,
                    "url": f"https://{kubeadm.join_host_port(host, host_port)}/livez",
                    "covered": outcome.covered,
                    "message": outcome.message,
                    "san_to_add": outcome.san_to_add,
                }
            )
    return results
