"""The certificate files a node of a binary-installed cluster holds, as cfssl ``-bare`` writes them.

Under the layout's ``cert_dir``: ``name.pem`` (0644), ``name-key.pem`` (0600) and ``name.csr``
(0644, a request made from the same key with the certificate's subject and SANs) for every file
of ``binary_layout.CERTS`` the node holds (``binary_layout.holds``); the CA certificates it needs
to verify its peers; the CA keys and the service-account key pair on control-plane nodes only.
Same shape as ``nodes_bundle_files`` for kubeadm: by node name, then path, a ``NodeFile``
(content and mode); paths here are absolute.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nodes.models import Cluster, Node
from pki.domain import binary_layout, binary_plan, kubeadm
from pki.domain.binary_layout import CA_FILES, CERTS, SERVICE_ACCOUNT, BinaryLayout
from pki.domain.kubeadm import CERT_MODE, KEY_MODE, NodeFile
from pki.domain.x509 import PrivateKey, load_certificate, load_private_key
from pki.services.certificates.binary_pems import BinaryPem, binary_pems
from pki.services.certificates.errors import PKIInputError
from pki.services.certificates.spec import binary_settings_of, cluster_spec, is_binary, node_spec

__all__ = ["binary_bundle_files", "binary_nodes_bundle_files", "csr_pem"]


def csr_pem(cert_pem: bytes, key: PrivateKey) -> bytes:
    """The PKCS#10 request ``cfssljson -bare`` leaves next to a certificate: the certificate's
    subject and SANs, signed by its key. Deterministic, so rewriting it changes nothing."""
    cert = load_certificate(cert_pem)
    builder = x509.CertificateSigningRequestBuilder().subject_name(cert.subject)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        builder = builder.add_extension(san.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    if isinstance(key, ec.EllipticCurvePrivateKey):
        request = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        request = builder.sign(key, hashes.SHA256())  # PKCS#1 v1.5: deterministic
    return request.public_bytes(serialization.Encoding.PEM)


def _leaf(files: dict[str, NodeFile], layout: BinaryLayout, base: str, pem: BinaryPem) -> None:
    files[layout.pem(base)] = NodeFile(pem.cert, CERT_MODE)
    files[layout.key(base)] = NodeFile(pem.key, KEY_MODE)
    files[layout.csr(base)] = NodeFile(csr_pem(pem.cert, load_private_key(pem.key)), CERT_MODE)


def _cas_for(role: str, stacked: bool, held: set[str]) -> list[tuple[str, bool]]:
    """(ledger CA name, with key) the node receives: every CA whose certificates it holds or
    verifies; keys (for the controller manager's signing, and re-signing) on control planes."""
    cp = role == kubeadm.ROLE_CONTROL_PLANE
    names = {binary_layout.CERTS_BY_NAME[name].signer for name in held}
    if cp:
        names.update(CA_FILES)
    return [
        (name, cp and (name != kubeadm.ETCD_CA or stacked)) for name in CA_FILES if name in names
    ]


def binary_nodes_bundle_files(
    cluster: Cluster, nodes: Sequence[Node]
) -> dict[str, dict[str, NodeFile]]:
    """Each node's certificate files by node name, then absolute path (PKIInputError when the
    cluster is no binary install or a file the node needs is not issued yet)."""
    if not is_binary(cluster):
        raise PKIInputError(
            f"{cluster.name} is a kubeadm cluster: its nodes hold the /etc/kubernetes tree", "node"
        )
    layout = binary_settings_of(cluster).layout()
    spec = cluster_spec(cluster)
    stacked = spec.etcd_topology == kubeadm.TOPOLOGY_STACKED
    found: dict[str, dict[str, NodeFile]] = {}
    for node in nodes:
        pure = node_spec(node)
        member = binary_plan.is_etcd_member(spec, pure)
        held = {c.name for c in CERTS if binary_layout.holds(c, node.role, etcd_member=member)}
        pems = binary_pems(cluster, node.name)
        wanted = [name for name, _ in _cas_for(node.role, stacked, held)]
        missing = [CA_FILES[n] for n in wanted if CA_FILES[n] not in pems]
        missing += sorted(name for name in held if name not in pems)
        control_plane = node.role == kubeadm.ROLE_CONTROL_PLANE
        if control_plane and SERVICE_ACCOUNT not in pems:
            missing.append(SERVICE_ACCOUNT)
        if missing:
            raise PKIInputError(
                f"the certificates of {node.name} are not all issued yet ({', '.join(missing)}); "
                "issue the missing certificates first",
                "node",
            )
        files: dict[str, NodeFile] = {}
        for ca_name, with_key in _cas_for(node.role, stacked, held):
            ca = pems[CA_FILES[ca_name]]
            files[layout.pem(CA_FILES[ca_name])] = NodeFile(ca.cert, CERT_MODE)
            if with_key:
                files[layout.key(CA_FILES[ca_name])] = NodeFile(ca.key, KEY_MODE)
        if control_plane:
            sa = pems[SERVICE_ACCOUNT]
            files[layout.pem(SERVICE_ACCOUNT)] = NodeFile(sa.cert, CERT_MODE)
            files[layout.key(SERVICE_ACCOUNT)] = NodeFile(sa.key, KEY_MODE)
        for cert in CERTS:
            if cert.name in held:
                _leaf(files, layout, cert.name, pems[cert.name])
        found[node.name] = files
    return found


def binary_bundle_files(cluster: Cluster, node: Node) -> dict[str, NodeFile]:
    """One node's certificate files by absolute path (see ``binary_nodes_bundle_files``)."""
    return binary_nodes_bundle_files(cluster, [node])[node.name]
