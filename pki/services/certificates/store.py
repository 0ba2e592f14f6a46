"""Reading and writing the stored PKI: CAs, leaf certificates and ``sa`` keys as rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509

from nodes import services as inventory
from nodes.models import Cluster, Node
from pki.domain import inspect as inspect_mod
from pki.domain.x509 import (
    PrivateKey,
    ca_cert_common_name,
    cert_dns_names,
    cert_ip_addresses,
    certificate_to_pem,
    fingerprint_sha256,
    private_key_to_pem,
    public_key_to_pem,
    spki_sha256,
)
from pki.models.certificates import (
    Certificate,
    CertificateAuthority,
    CertificateKind,
    CertificateStatus,
    ServiceAccountKey,
)


def lock_cluster(cluster: Cluster) -> None:
    # Serialise issuing per cluster so two concurrent requests cannot both fill the same gap, and
    # refuse (Conflict) to write certificates of a cluster deleted meanwhile.
    inventory.lock_cluster(cluster)


def _cert_facts(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "certificate_pem": certificate_to_pem(cert).decode(),
        "common_name": ca_cert_common_name(cert),
        "serial": inspect_mod.serial_hex(cert.serial_number),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "fingerprint_sha256": fingerprint_sha256(cert),
        "spki_sha256": spki_sha256(cert),
    }


def store_ca(
    cluster: Cluster, name: str, cert: x509.Certificate, key: PrivateKey, source: str
) -> CertificateAuthority:
    """Write a CA as the active one of its name, retiring the previous one."""
    CertificateAuthority.objects.filter(
        cluster=cluster, name=name, status=CertificateStatus.ACTIVE
    ).update(status=CertificateStatus.SUPERSEDED)
    return CertificateAuthority.objects.create(
        cluster=cluster,
        name=name,
        source=source,
        private_key_pem=private_key_to_pem(key).decode(),
        **_cert_facts(cert),
    )


def store_leaf(
    cluster: Cluster,
    authority: CertificateAuthority,
    cert: x509.Certificate,
    key: PrivateKey | None,
    *,
    name: str,
    node: Node | None = None,
    node_name: str = "",
    kind: str = CertificateKind.KUBEADM,
    usages: Sequence[str] = (),
) -> Certificate:
    organizations = [
        str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    ]
    return Certificate.objects.create(
        cluster=cluster,
        authority=authority,
        node=node,
        # An explicit name wins: a renewal keeps the name the certificate was issued for.
        node_name=node_name or (node.name if node is not None else ""),
        kind=kind,
        name=name,
        organizations=organizations,
        dns_names=cert_dns_names(cert),
        ip_addresses=cert_ip_addresses(cert),
        usages=list(usages),
        issuer=ca_cert_common_name(authority.certificate),
        private_key_pem=private_key_to_pem(key).decode() if key is not None else "",
        **_cert_facts(cert),
    )


def active_cas(cluster: Cluster) -> dict[str, CertificateAuthority]:
    """The cluster's active CAs by name (``ca``, ``front-proxy-ca``, ``etcd/ca``)."""
    return {
        ca.name: ca
        for ca in CertificateAuthority.objects.filter(
            cluster=cluster, status=CertificateStatus.ACTIVE
        )
    }


def store_sa_key(cluster: Cluster, key: PrivateKey) -> ServiceAccountKey:
    ServiceAccountKey.objects.filter(cluster=cluster, status=CertificateStatus.ACTIVE).update(
        status=CertificateStatus.SUPERSEDED
    )
    return ServiceAccountKey.objects.create(
        cluster=cluster,
        private_key_pem=private_key_to_pem(key).decode(),
        public_key_pem=public_key_to_pem(key).decode(),
    )


def nodes_by_name(cluster: Cluster) -> dict[str, Node]:
    return {n.name: n for n in cluster.nodes.all()}


def active_tree(cluster: Cluster) -> dict[tuple[str, str | None], Certificate]:
    """The active kubeadm files of the cluster keyed like the plan: (name, node or None)."""
    return {
        (c.name, c.node_name or None): c
        for c in Certificate.objects.tree().filter(cluster=cluster).select_related("authority")
    }
