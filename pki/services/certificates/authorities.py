"""The cluster's CAs and ``sa`` key pair, and the files control-plane nodes share."""

from __future__ import annotations

from cryptography import x509
from django.db import transaction

from nodes.models import Cluster
from pki.domain import kubeadm
from pki.domain.x509 import (
    create_ca,
)
from pki.models.certificates import (
    CAName,
    CASource,
    CertificateAuthority,
    CertificateStatus,
    ServiceAccountKey,
)
from pki.services.certificates.spec import cluster_spec
from pki.services.certificates.store import active_cas, lock_cluster, store_ca, store_sa_key


def ensure_cluster_cas(cluster: Cluster) -> dict[str, CertificateAuthority]:
    """The three CAs and the ``sa`` key pair of ``cluster``, generating whichever are missing.

    Existing (generated or imported) CAs are never replaced: every node must keep trusting them.
    """
    with transaction.atomic():
        lock_cluster(cluster)
        cas = active_cas(cluster)
        spec = cluster_spec(cluster, nodes=())
        missing = [s for s in kubeadm.ca_specs(spec) if s.name not in cas]
        need_sa = not ServiceAccountKey.objects.filter(
            cluster=cluster, status=CertificateStatus.ACTIVE
        ).exists()
        keys = kubeadm.generate_keys(cluster.key_algorithm, len(missing) + need_sa)
        for ca_spec in missing:
            key = keys.pop()
            cert = create_ca(ca_spec, key)
            cas[ca_spec.name] = store_ca(cluster, ca_spec.name, cert, key, CASource.GENERATED)
        if need_sa:
            store_sa_key(cluster, keys.pop())
        return cas


def service_account_key(cluster: Cluster) -> ServiceAccountKey:
    """The active ``sa`` key pair (generated with the CAs when missing)."""
    found = ServiceAccountKey.objects.filter(
        cluster=cluster, status=CertificateStatus.ACTIVE
    ).first()
    if found is None:
        ensure_cluster_cas(cluster)
        found = ServiceAccountKey.objects.get(cluster=cluster, status=CertificateStatus.ACTIVE)
    return found


def ca_certificates(cluster: Cluster) -> list[x509.Certificate]:
    """The Kubernetes CA certificate(s), for ``--discovery-token-ca-cert-hash`` (one per CA)."""
    return [
        ca.certificate
        for ca in CertificateAuthority.objects.filter(
            cluster=cluster, name=CAName.CA, status=CertificateStatus.ACTIVE
        )
    ]


def stored_service_account_key(cluster: Cluster) -> ServiceAccountKey | None:
    """The active ``sa`` key pair, or None before the CAs exist. Writes nothing."""
    return ServiceAccountKey.objects.filter(
        cluster=cluster, status=CertificateStatus.ACTIVE
    ).first()


def shared_control_plane_files(cluster: Cluster) -> dict[str, bytes]:
    """The files ``kubeadm init phase upload-certs`` transfers, by pki-relative path.

    ca, front-proxy-ca and sa always; the etcd CA only with stacked etcd, as kubeadm does.
    Nothing is generated: before the cluster's CAs and ``sa`` key exist the answer is empty.
    """
    cas = active_cas(cluster)
    sa = stored_service_account_key(cluster)
    names = [CAName.CA, CAName.FRONT_PROXY]
    if cluster.etcd_topology == kubeadm.TOPOLOGY_STACKED:
        names.append(CAName.ETCD)
    if sa is None or any(name not in cas for name in names):
        return {}
    files: dict[str, bytes] = {}
    for name in names:
        ca = cas[name]
        files[f"{name}.crt"] = ca.certificate_pem.encode()
        files[f"{name}.key"] = ca.private_key_pem.encode()
    files["sa.key"] = sa.private_key_pem.encode()
    files["sa.pub"] = sa.public_key_pem.encode()
    return files
