"""The PEM files of a binary-installed cluster, read from the ledger by their layout names.

The renderers of unit files and kubeconfigs (``pki.domain.binary_*``) and the node bundles read the
certificates through this one function, keyed by the file base of ``pki.domain.binary_layout``:
``ca``, ``front-proxy-ca``, ``etcd-ca`` for the CAs, ``service-account`` for the key pair, and every
``BinaryCert.name`` (per-node certificates are the given node's).
"""

from __future__ import annotations

from dataclasses import dataclass

from nodes.models import Cluster
from pki.domain.binary_layout import CA_FILES, CERTS, SERVICE_ACCOUNT
from pki.models import Certificate, CertificateStatus
from pki.services.certificates.authorities import stored_service_account_key
from pki.services.certificates.store import active_cas

__all__ = ["BinaryPem", "binary_pems"]


@dataclass(frozen=True)
class BinaryPem:
    """A certificate (for the service account: the public key) and its private key, as PEM."""

    cert: bytes
    key: bytes


def binary_pems(cluster: Cluster, node_name: str | None) -> dict[str, BinaryPem]:
    """Every active file the ledger holds for ``node_name`` (None: the shared files only).

    Missing certificates are simply absent: callers say which one they needed.
    """
    pems: dict[str, BinaryPem] = {}
    for ca_name, ca in active_cas(cluster).items():
        if ca_name in CA_FILES:
            pems[CA_FILES[ca_name]] = BinaryPem(
                ca.certificate_pem.encode(), ca.private_key_pem.encode()
            )
    sa = stored_service_account_key(cluster)
    if sa is not None:
        pems[SERVICE_ACCOUNT] = BinaryPem(sa.public_key_pem.encode(), sa.private_key_pem.encode())
    per_node = {cert.name for cert in CERTS if cert.per_node}
    rows = Certificate.objects.filter(
        cluster=cluster,
        status=CertificateStatus.ACTIVE,
        name__in=[cert.name for cert in CERTS],
    )
    for row in rows:
        if row.name in per_node and row.node_name != (node_name or ""):
            continue
        if row.name not in per_node and row.node_name:
            continue
        pems[row.name] = BinaryPem(row.certificate_pem.encode(), row.private_key_pem.encode())
    return pems
