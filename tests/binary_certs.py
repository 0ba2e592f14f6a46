"""Ledger rows for a binary-installed cluster, signed directly with ``pki.domain.x509``.

Enough for the rendered-file tests: every ``binary_layout.CERTS`` name, per node where it is per
node, signed by its CA with the plan's subject (CN and O: the identity policy reads them from the
kubeconfigs). The rest of the real plan (SANs, profiles, expiry) is not what these tests check.
"""

from __future__ import annotations

from nodes.models import Cluster, EtcdTopology, NodeRole
from pki.domain.binary_layout import CERTS, holds
from pki.domain.binary_plan import SHARED_SUBJECTS
from pki.domain.kubeadm import NODES_GROUP
from pki.domain.x509 import USAGE_CLIENT, USAGE_SERVER, CertSpec, generate_private_key
from pki.domain.x509 import sign_certificate as sign
from pki.models import Certificate
from pki.models.certificates import CertificateKind
from pki.services import certificates as certificate_services
from pki.services.certificates.store import store_leaf


def issue_binary_certs(cluster: Cluster, *, skip: tuple[str, ...] = ()) -> list[Certificate]:
    """The CAs, the service-account pair and one row per certificate (``skip`` leaves some out)."""
    cas = certificate_services.ensure_cluster_cas(cluster)
    stacked = cluster.etcd_topology == EtcdTopology.STACKED
    member_role = NodeRole.CONTROL_PLANE if stacked else NodeRole.ETCD
    rows = []
    for cert in CERTS:
        if cert.name in skip:
            continue
        holders = [
            node
            for node in cluster.nodes.order_by("name")
            if holds(cert, node.role, etcd_member=node.role == member_role)
        ]
        for node in holders if cert.per_node else [None]:
            if node is not None and "kubelet" in cert.name:
                common_name, groups = f"system:node:{node.name}", (NODES_GROUP,)
            else:
                common_name, groups = SHARED_SUBJECTS.get(cert.name, (cert.name, ()))
            spec = CertSpec(
                cert.name,
                cert.signer,
                common_name,
                organizations=groups,
                usages=(USAGE_CLIENT, USAGE_SERVER),
            )
            key = generate_private_key("ECDSA-P256")
            ca = cas[cert.signer]
            leaf = sign(spec, key.public_key(), ca.certificate, ca.private_key)
            rows.append(
                store_leaf(
                    cluster, ca, leaf, key, name=cert.name, node=node, kind=CertificateKind.CFSSL
                )
            )
    return rows
