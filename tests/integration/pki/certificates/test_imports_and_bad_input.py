"""Imports (kubeadm tree, cfssl CA, ca-csr.json), cfssl signing, the inspector, and bad input.

Every refused input answers 400 with the field at fault (or re-shows the form) and leaves every
PKI table exactly as it was.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.domain import kubeadm
from pki.domain.x509 import (
    DEFAULT_CA_VALIDITY,
    CertSpec,
    certificate_to_pem,
    create_ca,
    fingerprint_sha256,
    generate_private_key,
    private_key_to_pem,
    sign_certificate,
)
from pki.services import certificates as certificate_services
from tests.actors import SETUP
from tests.factories import make_cluster, make_node
from tests.integration.pki.certificates.conftest import openssl, row_counts

CA_CONFIG = json.dumps(
    {
        "signing": {
            "default": {"expiry": "8760h"},
            "profiles": {
                "kubernetes": {
                    "usages": ["signing", "key encipherment", "server auth", "client auth"],
                    "expiry": "8760h",
                }
            },
        }
    }
)


@pytest.fixture
def cluster_with_nodes(db: Any) -> Cluster:
    cluster = make_cluster(
        "imp", control_plane_endpoint="10.0.0.100:6443", key_algorithm="ECDSA-P256"
    )
    make_node(cluster, name="cp-1", address="10.0.0.11")  # the node of _kubeadm_tree
    return cluster


def _kubeadm_tree() -> tuple[dict[str, bytes], kubeadm.IssuedTree]:
    """What kubeadm would have left in /etc/kubernetes on cp-1 of an existing cluster."""
    spec = kubeadm.ClusterSpec(
        control_plane_endpoint="10.0.0.100:6443",
        key_algorithm="ECDSA-P256",
        nodes=(kubeadm.NodeSpec("cp-1", "10.0.0.11"),),
    )
    tree = kubeadm.issue(kubeadm.plan(spec))
    files = kubeadm.node_files(spec, tree, spec.nodes[0])
    return {path: f.content for path, f in files.items()}, tree


def _targz(files: dict[str, bytes], root: str = "etc/kubernetes/") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(root + name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _upload(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_a_kubeadm_tree_is_imported_with_its_fingerprints(
    cluster_with_nodes, api_client, tmp_path: Path
) -> None:
    cluster = cluster_with_nodes
    files, tree = _kubeadm_tree()
    response = api_client("admin").post(
        f"/api/v1/clusters/{cluster.pk}/import/kubeadm/",
        {"archive": _upload("etc-kubernetes.tar.gz", _targz(files))},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    expected = {name: fingerprint_sha256(issued.cert) for name, issued in tree.cas.items()}
    assert {
        ca.name: ca.fingerprint_sha256 for ca in certificate_services.active_cas(cluster).values()
    } == (expected)
    sa = cluster.service_account_keys.get(status="active")
    assert sa.public_key_pem.encode() == files["pki/sa.pub"]
    # Certificates issued afterwards chain to the imported CA, as openssl sees it.
    certificate_services.issue_missing(cluster, actor=SETUP)
    apiserver = certificate_services.active_tree(cluster)[("apiserver", "cp-1")]
    (tmp_path / "ca.crt").write_bytes(files["pki/ca.crt"])
    (tmp_path / "apiserver.crt").write_text(apiserver.certificate_pem)
    openssl("verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "apiserver.crt"))
    event = AuditEvent.objects.get(action="pki.import.kubeadm")
    assert event.details["authorities"]["ca"] == expected["ca"]
    assert "PRIVATE" not in json.dumps(event.details)


def test_a_cfssl_ca_is_imported_and_signs_a_csr_with_a_profile(
    cluster_with_nodes, api_client, tmp_path: Path
) -> None:
    cluster = cluster_with_nodes
    key = generate_private_key("ECDSA-P256")
    cert = create_ca(
        CertSpec("ca", None, "cfssl-root", is_ca=True, validity=dt.timedelta(days=3650)), key
    )
    client = api_client("admin")
    response = client.post(
        f"/api/v1/clusters/{cluster.pk}/import/cfssl-ca/",
        {
            "ca_pem": certificate_to_pem(cert).decode(),
            "ca_key_pem": private_key_to_pem(key).decode(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["authorities"][0]["fingerprint_sha256"] == fingerprint_sha256(cert)
    assert AuditEvent.objects.filter(action="pki.import.cfssl").count() == 1
    csr_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-proxy")]))
        .sign(csr_key, hashes.SHA256())
    )
    signed = client.post(
        f"/api/v1/clusters/{cluster.pk}/cfssl/sign/",
        {
            "ca_config": CA_CONFIG,
            "profile": "kubernetes",
            "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode(),
        },
        format="json",
    )
    assert signed.status_code == 201, signed.content
    pem = client.get(f"/api/v1/certificates/{signed.json()['id']}/pem/").content
    (tmp_path / "ca.pem").write_bytes(certificate_to_pem(cert))
    (tmp_path / "leaf.pem").write_bytes(pem)
    openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem"))


def test_a_ca_is_created_from_a_cfssl_ca_csr(cluster_with_nodes, api_client) -> None:
    csr = {"CN": "kubernetes", "key": {"algo": "ecdsa", "size": 256}, "names": [{"O": "lab"}]}
    response = api_client("admin").post(
        f"/api/v1/clusters/{cluster_with_nodes.pk}/import/cfssl-csr/",
        {"ca_csr": json.dumps(csr), "name": "front-proxy-ca"},
        format="json",
    )
    assert response.status_code == 201, response.content
    (ca,) = response.json()["authorities"]
    assert ca["name"] == "front-proxy-ca" and ca["common_name"] == "kubernetes"
    assert ca["source"] == "cfssl-csr"


def test_the_inspector_reports_an_uploaded_pem(db: Any, api_client) -> None:
    key = generate_private_key("ECDSA-P256")
    cert = create_ca(CertSpec("ca", None, "kubernetes", is_ca=True), key)
    response = api_client("viewer").post(
        "/api/v1/pki/inspect/",
        {"pem": _upload("ca.crt", certificate_to_pem(cert))},
        format="multipart",
    )
    assert response.status_code == 200
    (info,) = response.json()["certificates"]
    assert info["is_ca"] is True and info["subject"]["common_name"] == "kubernetes"
    assert info["fingerprints"]["sha256"] == fingerprint_sha256(cert)
    assert info["key"]["description"] == "ECDSA P-256" and info["days_left"] >= 364
    assert info["spki_sha256"].startswith("sha256:") and info["fingerprints"]["sha1"]


# --------------------------------------------------------------------------- bad input


def _expired_ca() -> tuple[bytes, bytes]:
    key = generate_private_key("ECDSA-P256")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    spec = CertSpec("ca", None, "old", is_ca=True, validity=dt.timedelta(days=10))
    return certificate_to_pem(create_ca(spec, key, now=past)), private_key_to_pem(key)


def _leaf_as_ca() -> tuple[bytes, bytes]:
    ca_key = generate_private_key("ECDSA-P256")
    ca_spec = CertSpec("ca", None, "root", is_ca=True, validity=DEFAULT_CA_VALIDITY)
    ca = create_ca(ca_spec, ca_key)  # outlives the leaf however long signing takes
    key = generate_private_key("ECDSA-P256")
    leaf = sign_certificate(
        CertSpec("leaf", "ca", "not-a-ca", usages=("client",)), key.public_key(), ca, ca_key
    )
    return certificate_to_pem(leaf), private_key_to_pem(key)


def _mismatched_ca() -> tuple[bytes, bytes]:
    key = generate_private_key("ECDSA-P256")
    cert = create_ca(CertSpec("ca", None, "root", is_ca=True), key)
    return certificate_to_pem(cert), private_key_to_pem(generate_private_key("ECDSA-P256"))


def _weak_csr() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _badly_signed_csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .sign(key, hashes.SHA256())
    )
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def _traversal_archive() -> bytes:
    return _targz({"../../etc/passwd": b"root:x:0:0"}, root="")


def _symlink_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pki/ca.key")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(info)
    return buffer.getvalue()


def _zip_traversal() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pki/../../evil.crt", b"x")
    return buffer.getvalue()


def _tree_with_a_wrong_key() -> bytes:
    files, _ = _kubeadm_tree()
    files["pki/apiserver.key"] = private_key_to_pem(generate_private_key("ECDSA-P256"))
    return _targz(files)


def _bad_cases() -> list[tuple[str, str, str, Any, str]]:
    expired, expired_key = _expired_ca()
    leaf, leaf_key = _leaf_as_ca()
    mismatched, other_key = _mismatched_ca()
    signing = {"ca_config": CA_CONFIG, "profile": "kubernetes"}
    return [
        (
            "garbage PEM",
            "/api/v1/pki/inspect/",
            "json",
            {"pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
            "pem",
        ),
        (
            "key not matching",
            "import/cfssl-ca/",
            "json",
            {"ca_pem": mismatched.decode(), "ca_key_pem": other_key.decode()},
            "ca_key_pem",
        ),
        (
            "non-CA as CA",
            "import/cfssl-ca/",
            "json",
            {"ca_pem": leaf.decode(), "ca_key_pem": leaf_key.decode()},
            "ca_pem",
        ),
        (
            "expired CA",
            "import/cfssl-ca/",
            "json",
            {"ca_pem": expired.decode(), "ca_key_pem": expired_key.decode()},
            "ca_pem",
        ),
        (
            "CSR with a bad signature",
            "cfssl/sign/",
            "json",
            {**signing, "csr_pem": _badly_signed_csr()},
            "csr_pem",
        ),
        (
            "unknown profile",
            "cfssl/sign/",
            "json",
            {**signing, "profile": "nope", "csr_pem": _weak_csr()},
            "profile",
        ),
        ("RSA 1024 CSR", "cfssl/sign/", "json", {**signing, "csr_pem": _weak_csr()}, "csr_pem"),
        (
            "RSA 1024 ca-csr.json",
            "import/cfssl-csr/",
            "json",
            {"ca_csr": '{"CN": "x", "key": {"algo": "rsa", "size": 1024}}'},
            "ca_csr",
        ),
        (
            "broken ca-config",
            "cfssl/sign/",
            "json",
            {**signing, "ca_config": "{", "csr_pem": _weak_csr()},
            "ca_config",
        ),
        (
            "validity beyond the CA",
            "kubeconfigs/",
            "json",
            {"username": "bob", "validity": 36500},
            "validity",
        ),
        (
            "path traversal",
            "import/kubeadm/",
            "multipart",
            {"archive": _upload("a.tar.gz", _traversal_archive())},
            "archive",
        ),
        (
            "symlink",
            "import/kubeadm/",
            "multipart",
            {"archive": _upload("a.tar.gz", _symlink_archive())},
            "archive",
        ),
        (
            "zip traversal",
            "import/kubeadm/",
            "multipart",
            {"archive": _upload("a.zip", _zip_traversal())},
            "archive",
        ),
        (
            "not an archive",
            "import/kubeadm/",
            "multipart",
            {"archive": _upload("a.tgz", b"garbage")},
            "archive",
        ),
        (
            "tree with a wrong key",
            "import/kubeadm/",
            "multipart",
            {"archive": _upload("t.tgz", _tree_with_a_wrong_key())},
            "archive",
        ),
    ]


def test_every_bad_input_is_a_400_naming_its_field_and_writes_nothing(
    cluster_with_nodes, api_client
) -> None:
    cluster = cluster_with_nodes
    certificate_services.ensure_cluster_cas(cluster)  # a CA to sign with
    client = api_client("admin")
    for label, url, fmt, body, field in _bad_cases():
        before, audits = row_counts(), AuditEvent.objects.count()
        path = url if url.startswith("/") else f"/api/v1/clusters/{cluster.pk}/{url}"
        for value in body.values():
            if isinstance(value, io.BytesIO):
                value.seek(0)
        response = client.post(path, body, format=fmt)
        assert response.status_code == 400, (label, response.status_code, response.content[:300])
        errors = response.json()["errors"]
        assert field in errors, (label, errors)
        assert row_counts() == before, label
        assert AuditEvent.objects.count() == audits, label
        assert b"PRIVATE KEY" not in response.content, label


def test_a_tree_with_a_wrong_key_is_reported_per_file(cluster_with_nodes, api_client) -> None:
    response = api_client("admin").post(
        f"/api/v1/clusters/{cluster_with_nodes.pk}/import/kubeadm/",
        {"archive": _upload("t.tgz", _tree_with_a_wrong_key())},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["archive"] == ["apiserver.key: does not match apiserver.crt"]


def test_the_import_form_is_shown_again_with_the_problem(cluster_with_nodes, web_client) -> None:
    before = row_counts()
    response = web_client("admin").post(
        f"/clusters/{cluster_with_nodes.pk}/authorities/import/",
        {"form": "kubeadm", "kubeadm-archive": _upload("a.tar.gz", _traversal_archive())},
    )
    assert response.status_code == 200
    assert b"path components are not allowed" in response.content
    assert row_counts() == before


def test_the_import_page_stores_a_good_tree_and_redirects(cluster_with_nodes, web_client) -> None:
    files, tree = _kubeadm_tree()
    response = web_client("admin").post(
        f"/clusters/{cluster_with_nodes.pk}/authorities/import/",
        {"form": "kubeadm", "kubeadm-archive": _upload("t.tgz", _targz(files))},
    )
    assert response.status_code == 302
    ca = certificate_services.active_cas(cluster_with_nodes)["ca"]
    assert ca.fingerprint_sha256 == fingerprint_sha256(tree.cas["ca"].cert)
    assert AuditEvent.objects.filter(action="pki.import.kubeadm").exists()
