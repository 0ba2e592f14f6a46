"""The ``kube-system/kubeadm-certs`` Secret that ``kubeadm init phase upload-certs`` stores."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from clusterpanel.security import audit
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, EtcdTopology
from pki.domain import kubeadm, upload_certs
from pki.domain import tokens as token_rules
from pki.services.bootstrap.errors import JoinUnavailable
from pki.services.bootstrap.join_commands import (
    require_certificate_key,
    require_certificate_key_access,
)

KUBEADM_CERTS_REFUSED = (
    "kubeadm-certs carries the cluster's CA keys, encrypted with the certificate key: it is an "
    "admin download"
)


def _external_etcd_files(cluster: Cluster) -> dict[str, bytes]:
    """With external etcd kubeadm uploads the files named by ``etcd.external`` under fixed
    names; in the panel's tree those are the etcd CA and the apiserver's etcd client pair."""
    from pki.services import certificates as certificate_services

    ca = certificate_services.active_cas(cluster).get(kubeadm.ETCD_CA)
    client = certificate_services.active_tree(cluster).get(("apiserver-etcd-client", None))
    if ca is None or client is None:
        raise JoinUnavailable(
            f"Cluster {cluster.name} uses external etcd and has no apiserver-etcd-client "
            "certificate yet: issue the certificates first."
        )
    return {
        "external-etcd-ca.crt": ca.certificate_pem.encode(),
        "external-etcd.crt": client.certificate_pem.encode(),
        "external-etcd.key": client.private_key_pem.encode(),
    }


def _files_to_upload(cluster: Cluster) -> tuple[dict[str, bytes], bool]:
    from pki.services import certificates as certificate_services

    if certificate_services.is_binary(cluster):
        raise JoinUnavailable(
            f"{cluster.name} is a binary install (no kubeadm): it has no kubeadm-certs Secret"
        )
    external = cluster.etcd_topology == EtcdTopology.EXTERNAL
    available = certificate_services.shared_control_plane_files(cluster)
    if not available:
        raise JoinUnavailable(
            f"Cluster {cluster.name} has no CAs yet: issue the certificates first."
        )
    files = {
        name: available[name]
        for name in upload_certs.certs_to_transfer(external)
        if name in available
    }
    if external:
        files.update(_external_etcd_files(cluster))
    return files, external


def download_kubeadm_certs(cluster: Cluster, *, actor: Actor, now: datetime | None = None) -> str:
    """The ``kube-system/kubeadm-certs`` Secret that ``kubeadm init phase upload-certs`` would
    store, encrypted with the cluster's current certificate key.

    Neither the CAs nor the key are made here (``JoinUnavailable``/``NoCertificateKey`` say what
    is missing). It carries the CA keys (encrypted with the certificate key), so it is an admin
    download (403 otherwise), recorded as ``kubeadm_certs.download`` in the same transaction.
    """
    require_certificate_key_access(actor, KUBEADM_CERTS_REFUSED)
    now = now or timezone.now()
    files, external = _files_to_upload(cluster)
    with transaction.atomic():
        key = require_certificate_key(cluster, now)
        try:
            payload = upload_certs.build_payload(files, key.key, external_etcd=external)
        except upload_certs.UploadCertsError as error:
            raise JoinUnavailable(
                f"Cannot build kubeadm-certs for {cluster.name}: {error}"
            ) from None
        audit.record(
            "kubeadm_certs.download", actor, obj=cluster, details={"certificate_key_id": key.pk}
        )
    expires = token_rules.format_expiration(key.expires_at)
    header = (
        "# kube-system/kubeadm-certs as `kubeadm init phase upload-certs --upload-certs` stores"
        " it.\n"
        f"# Encrypted with the certificate key that expires at {expires}; delete the Secret"
        " after that\n"
        "# (kubeadm lets its two-hour owner token remove it).\n"
    )
    return header + upload_certs.render_secret(payload)
