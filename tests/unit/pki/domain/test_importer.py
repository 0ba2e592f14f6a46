"""An existing kubeadm PKI is checked file by file before the panel takes it over."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pki.domain.archive import read_archive
from pki.domain.importer import import_cfssl_ca, validate_kubeadm_pki
from pki.domain.x509 import (
    CertSpec,
    PKIError,
    certificate_to_pem,
    create_ca,
    fingerprint_sha256,
    generate_private_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_certificate,
)

NOW = dt.datetime(2030, 3, 1, 12, 0, tzinfo=dt.UTC)
ALGORITHM = "ECDSA-P256"  # fast to generate; the checks do not depend on the key type

CAS = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}
LEAVES = {
    "apiserver": ("ca", "kube-apiserver", ("server",)),
    "apiserver-kubelet-client": ("ca", "kube-apiserver-kubelet-client", ("client",)),
    "front-proxy-client": ("front-proxy-ca", "front-proxy-client", ("client",)),
    "etcd/server": ("etcd/ca", "node-a", ("server", "client")),
    "etcd/peer": ("etcd/ca", "node-a", ("server", "client")),
    "etcd/healthcheck-client": ("etcd/ca", "kube-etcd-healthcheck-client", ("client",)),
    "apiserver-etcd-client": ("etcd/ca", "kube-apiserver-etcd-client", ("client",)),
}


def _ca(name: str, cn: str, now: dt.datetime = NOW, validity: dt.timedelta | None = None):
    key = generate_private_key(ALGORITHM)
    spec = CertSpec(name=name, signer=None, common_name=cn, is_ca=True)
    if validity is not None:
        spec = dataclasses.replace(spec, validity=validity)
    return create_ca(spec, key, now=now), key


def _leaf(name: str, cn: str, usages: tuple[str, ...], ca_cert, ca_key, organizations=()):
    key = generate_private_key(ALGORITHM)
    spec = CertSpec(
        name=name, signer="x", common_name=cn, organizations=organizations, usages=usages
    )
    return sign_certificate(spec, key.public_key(), ca_cert, ca_key, now=NOW), key


def _kubeconfig(ca_cert, cert, key) -> bytes:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubernetes",
                "cluster": {
                    "server": "https://10.0.0.1:6443",
                    "certificate-authority-data": b64(certificate_to_pem(ca_cert)),
                },
            }
        ],
        "users": [
            {
                "name": "kubernetes-admin",
                "user": {
                    "client-certificate-data": b64(certificate_to_pem(cert)),
                    "client-key-data": b64(private_key_to_pem(key)),
                },
            }
        ],
        "contexts": [
            {
                "name": "kubernetes-admin@kubernetes",
                "context": {"cluster": "kubernetes", "user": "kubernetes-admin"},
            }
        ],
        "current-context": "kubernetes-admin@kubernetes",
    }
    return yaml.safe_dump(document).encode()


@pytest.fixture(scope="module")
def tree() -> dict[str, object]:
    """A complete kubeadm tree: parsed objects by base name plus its file map."""
    objects: dict[str, tuple] = {name: _ca(name, cn) for name, cn in CAS.items()}
    for name, (signer, cn, usages) in LEAVES.items():
        objects[name] = _leaf(name, cn, usages, *objects[signer])
    objects["admin.conf"] = _leaf(
        "admin.conf", "kubernetes-admin", ("client",), *objects["ca"], ("kubeadm:cluster-admins",)
    )
    files: dict[str, bytes] = {}
    for name, (cert, key) in objects.items():
        if name == "admin.conf":
            files[name] = _kubeconfig(objects["ca"][0], cert, key)
            continue
        files[f"{name}.crt"] = certificate_to_pem(cert)
        files[f"{name}.key"] = private_key_to_pem(key)
    sa_key = generate_private_key(ALGORITHM)
    files["sa.key"] = private_key_to_pem(sa_key)
    files["sa.pub"] = public_key_to_pem(sa_key)
    return {"objects": objects, "files": files}


def _files(tree: dict[str, object]) -> dict[str, bytes]:
    return dict(tree["files"])  # type: ignore[arg-type]


def _objects(tree: dict[str, object]) -> dict[str, tuple]:
    return tree["objects"]  # type: ignore[return-value]


def test_a_complete_tree_imports_and_keeps_the_ca_fingerprints(tree: dict[str, object]) -> None:
    files = _files(tree)
    files["apiserver.crt.bak"] = b"old"
    report = validate_kubeadm_pki(files, now=NOW)

    assert report.ok, [(f.name, f.problems) for f in report.files if not f.ok] + report.problems
    objects = _objects(tree)
    assert set(report.cas) == set(CAS)
    for name in CAS:
        cert = objects[name][0]
        assert report.file(f"{name}.crt").fingerprint == fingerprint_sha256(cert)
        assert fingerprint_sha256(report.cas[name][0]) == fingerprint_sha256(cert)
        assert report.file(f"{name}.crt").kind == "ca-certificate"
    assert set(report.leaves) == set(LEAVES)
    assert report.service_account is not None
    assert report.file("admin.conf").kind == "kubeconfig"
    assert report.file("admin.conf").fingerprint == fingerprint_sha256(objects["admin.conf"][0])
    unknown = report.file("apiserver.crt.bak")
    assert unknown.kind == "unknown"
    assert unknown.ok
    assert unknown.notes == ["not a kubeadm PKI file; ignored"]


def test_a_key_that_does_not_match_its_certificate_is_reported_on_that_key(
    tree: dict[str, object],
) -> None:
    files = _files(tree)
    files["ca.key"] = files["front-proxy-ca.key"]
    files["etcd/peer.key"] = files["etcd/server.key"]

    report = validate_kubeadm_pki(files, now=NOW)

    assert not report.ok
    assert report.file("ca.key").problems == ["does not match ca.crt"]
    assert report.file("etcd/peer.key").problems == ["does not match etcd/peer.crt"]
    assert report.file("ca.crt").ok
    assert "ca" not in report.cas
    assert "etcd/peer" not in report.leaves
    assert "etcd/server" in report.leaves


def test_a_non_ca_certificate_in_a_ca_slot_is_reported(tree: dict[str, object]) -> None:
    files = _files(tree)
    # A leaf with its own key where the front-proxy CA belongs.
    files["front-proxy-ca.crt"] = files["front-proxy-client.crt"]
    files["front-proxy-ca.key"] = files["front-proxy-client.key"]

    report = validate_kubeadm_pki(files, now=NOW)

    problems = report.file("front-proxy-ca.crt").problems
    assert problems == ["is not a CA certificate (basicConstraints CA:FALSE or missing)"]
    assert "front-proxy-ca" not in report.cas
    assert report.file("ca.crt").ok


def test_an_expired_ca_is_reported(tree: dict[str, object]) -> None:
    files = _files(tree)
    old_cert, old_key = _ca(
        "etcd/ca", "etcd-ca", now=NOW - dt.timedelta(days=400), validity=dt.timedelta(days=365)
    )
    files["etcd/ca.crt"] = certificate_to_pem(old_cert)
    files["etcd/ca.key"] = private_key_to_pem(old_key)

    report = validate_kubeadm_pki(files, now=NOW)

    [problem] = report.file("etcd/ca.crt").problems
    assert problem.startswith("CA certificate expired on ")
    assert "etcd/ca" not in report.cas
    # The etcd leaves were signed by the previous etcd CA, which this tree no longer holds.
    assert "is not signed by etcd/ca.crt" in report.file("etcd/server.crt").problems[0]


def test_a_leaf_signed_by_the_wrong_ca_is_reported(tree: dict[str, object]) -> None:
    files = _files(tree)
    objects = _objects(tree)
    # front-proxy-client signed by the cluster CA instead of front-proxy-ca.
    cert, key = _leaf("front-proxy-client", "front-proxy-client", ("client",), *objects["ca"])
    files["front-proxy-client.crt"] = certificate_to_pem(cert)
    files["front-proxy-client.key"] = private_key_to_pem(key)

    report = validate_kubeadm_pki(files, now=NOW)

    [problem] = report.file("front-proxy-client.crt").problems
    assert problem.startswith("is not signed by front-proxy-ca.crt (issuer 'CN=kubernetes'")
    assert report.file("front-proxy-client.key").ok
    assert "front-proxy-client" not in report.leaves
    assert set(report.cas) == set(CAS)


def test_a_leaf_with_the_right_issuer_name_but_a_foreign_signature_is_reported(
    tree: dict[str, object],
) -> None:
    files = _files(tree)
    # Another "kubernetes" CA: same subject, different key, as after a botched re-init.
    impostor = _ca("ca", "kubernetes")
    cert, key = _leaf("apiserver", "kube-apiserver", ("server",), *impostor)
    files["apiserver.crt"] = certificate_to_pem(cert)
    files["apiserver.key"] = private_key_to_pem(key)

    report = validate_kubeadm_pki(files, now=NOW)

    assert report.file("apiserver.crt").problems[0].startswith("is not signed by ca.crt")


def test_unparsable_files_and_a_wrong_sa_pub_are_reported(tree: dict[str, object]) -> None:
    files = _files(tree)
    files["apiserver.crt"] = b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"
    files["sa.pub"] = public_key_to_pem(generate_private_key(ALGORITHM))

    report = validate_kubeadm_pki(files, now=NOW)

    assert report.file("apiserver.crt").problems[0].startswith("cannot be parsed")
    assert report.file("sa.pub").problems == ["does not match sa.key"]
    assert report.service_account is None
    assert not report.ok


def test_a_kubeconfig_with_a_foreign_client_certificate_is_reported(
    tree: dict[str, object],
) -> None:
    files = _files(tree)
    objects = _objects(tree)
    other_ca = _ca("ca", "kubernetes")
    cert, key = _leaf("admin.conf", "kubernetes-admin", ("client",), *other_ca)
    files["admin.conf"] = _kubeconfig(other_ca[0], cert, key)
    files["scheduler.conf"] = _kubeconfig(objects["ca"][0], cert, objects["ca"][1])

    report = validate_kubeadm_pki(files, now=NOW)

    admin = report.file("admin.conf").problems
    assert admin[0] == "its embedded CA is not ca.crt"
    assert admin[1].startswith("its client certificate is not signed by ca.crt")
    scheduler = report.file("scheduler.conf")
    assert "its client key does not match its client certificate" in scheduler.problems
    assert scheduler.notes == [
        "client CN is 'kubernetes-admin'; kubeadm uses 'system:kube-scheduler'"
    ]


def test_missing_ca_key_and_missing_tree_are_reported(tree: dict[str, object]) -> None:
    files = _files(tree)
    del files["ca.key"]
    report = validate_kubeadm_pki(files, now=NOW)
    assert report.file("ca.crt").problems == [
        "ca.key is missing; the panel needs the CA key to sign"
    ]

    empty = validate_kubeadm_pki({"notes.txt": b"hello"}, now=NOW)
    assert not empty.ok
    assert empty.problems == ["ca.crt is missing: this does not look like a kubeadm PKI"]


def test_an_external_etcd_tree_without_etcd_files_is_fine(tree: dict[str, object]) -> None:
    files = {k: v for k, v in _files(tree).items() if not k.startswith(("etcd/", "apiserver-etcd"))}
    report = validate_kubeadm_pki(files, now=NOW)
    assert report.ok
    assert set(report.cas) == {"ca", "front-proxy-ca"}


def test_an_uploaded_etc_kubernetes_tarball_validates_end_to_end(tree: dict[str, object]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in _files(tree).items():
            path = name if name.endswith(".conf") else f"pki/{name}"
            info = tarfile.TarInfo(f"etc/kubernetes/{path}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))

    report = validate_kubeadm_pki(read_archive(buffer.getvalue()), now=NOW)

    assert report.ok
    assert set(report.cas) == set(CAS)
    assert {f.name for f in report.files} == set(_files(tree))


# --------------------------------------------------------------------------- cfssl CA


def _cfssl_initca(directory: Path, csr: dict) -> tuple[bytes, bytes]:
    (directory / "ca-csr.json").write_text(json.dumps(csr))
    out = subprocess.run(
        ["cfssl", "gencert", "-initca", "ca-csr.json"],
        cwd=directory,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(
        ["cfssljson", "-bare", "ca"], cwd=directory, input=out, check=True, capture_output=True
    )
    return (directory / "ca.pem").read_bytes(), (directory / "ca-key.pem").read_bytes()


def test_import_cfssl_ca_accepts_a_ca_made_by_cfssl(tmp_path: Path) -> None:
    ca_pem, key_pem = _cfssl_initca(
        tmp_path,
        {"CN": "Kubernetes", "key": {"algo": "rsa", "size": 2048}, "names": [{"O": "k8s"}]},
    )
    cert, key = import_cfssl_ca(ca_pem, key_pem)
    assert cert.subject.rfc4514_string() == "CN=Kubernetes,O=k8s"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert public_key_to_pem(key) == public_key_to_pem(cert.public_key())


def test_import_cfssl_ca_rejects_a_mismatched_key_and_an_expired_ca(tmp_path: Path) -> None:
    ca_pem, _ = _cfssl_initca(tmp_path, {"CN": "one", "key": {"algo": "ecdsa", "size": 256}})
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = _cfssl_initca(other, {"CN": "two", "key": {"algo": "ecdsa", "size": 256}})
    with pytest.raises(PKIError, match=re.escape("ca-key.pem does not match ca.pem")):
        import_cfssl_ca(ca_pem, other_key)
    with pytest.raises(PKIError, match=re.escape("ca.pem CA certificate expired")):
        import_cfssl_ca(
            ca_pem,
            (tmp_path / "ca-key.pem").read_bytes(),
            now=x509.load_pem_x509_certificate(ca_pem).not_valid_after_utc + dt.timedelta(days=1),
        )


def test_import_cfssl_ca_rejects_a_leaf_and_garbage() -> None:
    ca_cert, ca_key = _ca("ca", "kubernetes")
    cert, key = _leaf("x", "x", ("client",), ca_cert, ca_key)
    with pytest.raises(PKIError, match="not a CA certificate"):
        import_cfssl_ca(certificate_to_pem(cert), private_key_to_pem(key), now=NOW)
    with pytest.raises(PKIError, match=re.escape("ca-key.pem: not a valid private key")):
        import_cfssl_ca(
            certificate_to_pem(ca_cert),
            b"-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n",
        )


def test_import_cfssl_ca_rejects_a_weak_rsa_key() -> None:
    # x509.create_ca refuses weak keys, so this CA is built by hand as an old tool would have.
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(
        PKIError, match=re.escape("ca-key.pem is RSA 1024; RSA CA keys need at least 2048")
    ):
        import_cfssl_ca(certificate_to_pem(cert), private_key_to_pem(key), now=NOW)
