"""Join commands byte for byte as kubeadm prints them, discovery hashes checked with openssl."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pki.domain.join import (
    JoinError,
    format_join_command,
    generate_certificate_key,
    normalize_endpoint,
    validate_certificate_key,
)
from pki.domain.x509 import spki_sha256

TOKEN = "abcdef.0123456789abcdef"
HASH_A = "sha256:" + "0a" * 32
HASH_B = "sha256:" + "b1" * 32
KEY = "7f" * 32


def make_ca(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )


def spki_hash(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def openssl_hash(path: Path) -> str:
    """The pipeline from docs/kubeadm.md §4, run step by step with the real openssl."""
    pubkey = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=pubkey,
        check=True,
        capture_output=True,
    ).stdout
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hex"], input=der, check=True, capture_output=True
    ).stdout.decode()
    return "sha256:" + digest.strip().split(" ")[-1]


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[x509.Certificate, Path]]:
    directory = tmp_path_factory.mktemp("cas")
    keys = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
    }
    result = {}
    for name, key in keys.items():
        cert = make_ca(key)
        path = directory / f"{name}-ca.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        result[name] = (cert, path)
    return result


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_discovery_hash_equals_openssl_pipeline(
    kind: str, ca_files: dict[str, tuple[x509.Certificate, Path]]
) -> None:
    cert, path = ca_files[kind]
    expected = openssl_hash(path)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", expected)
    # The empty-input digest is what a broken pipeline prints; make sure we did not get it.
    assert expected != "sha256:" + hashlib.sha256(b"").hexdigest()
    assert spki_hash(cert) == expected
    assert spki_sha256(cert) == expected
    command = format_join_command("10.0.0.1", TOKEN, [expected])
    assert f"--discovery-token-ca-cert-hash {expected} " in command


def test_worker_multi_line() -> None:
    assert format_join_command("10.0.0.1:6443", TOKEN, [HASH_A]) == (
        "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\\n"
        f"\t--discovery-token-ca-cert-hash {HASH_A} "
    )


def test_control_plane_multi_line() -> None:
    assert format_join_command(
        "10.0.0.1:6443", TOKEN, [HASH_A], control_plane=True, certificate_key=KEY
    ) == (
        "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\\n"
        f"\t--discovery-token-ca-cert-hash {HASH_A} \\\n"
        f"\t--control-plane --certificate-key {KEY}"
    )


def test_control_plane_without_certificate_key() -> None:
    assert format_join_command("10.0.0.1", TOKEN, [HASH_A], control_plane=True) == (
        "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\\n"
        f"\t--discovery-token-ca-cert-hash {HASH_A} \\\n"
        "\t--control-plane "
    )


def test_one_line_worker_and_control_plane() -> None:
    assert format_join_command("10.0.0.1", TOKEN, [HASH_A], one_line=True) == (
        f"kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef "
        f"--discovery-token-ca-cert-hash {HASH_A} "
    )
    assert format_join_command(
        "10.0.0.1", TOKEN, [HASH_A], control_plane=True, certificate_key=KEY, one_line=True
    ) == (
        f"kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef "
        f"--discovery-token-ca-cert-hash {HASH_A} --control-plane --certificate-key {KEY}"
    )


def test_ipv6_endpoint_and_two_hashes() -> None:
    assert format_join_command("fd00:10::1", TOKEN, [HASH_A, HASH_B]) == (
        "kubeadm join [fd00:10::1]:6443 --token abcdef.0123456789abcdef \\\n"
        f"\t--discovery-token-ca-cert-hash {HASH_A} --discovery-token-ca-cert-hash {HASH_B} "
    )


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("10.0.0.1", "10.0.0.1:6443"),
        ("10.0.0.1:443", "10.0.0.1:443"),
        ("https://10.0.0.1:6443", "10.0.0.1:6443"),
        ("fd00::1", "[fd00::1]:6443"),
        ("[fd00::1]", "[fd00::1]:6443"),
        ("[FD00:0::1]:8443", "[fd00::1]:8443"),
        ("API.Example.com", "api.example.com:6443"),
        ("api.example.com:8443", "api.example.com:8443"),
    ],
)
def test_normalize_endpoint(endpoint: str, expected: str) -> None:
    assert normalize_endpoint(endpoint) == expected


@pytest.mark.parametrize(
    "endpoint",
    [
        "",
        "10.0.0.1:0",
        "10.0.0.1:70000",
        "10.0.0.1:port",
        "10.0.0.256",
        "[fd00::1",
        "bad_host",
        "a b",
    ],
)
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(JoinError, match="endpoint"):
        normalize_endpoint(endpoint)


def test_invalid_inputs_name_the_field() -> None:
    with pytest.raises(JoinError, match="token"):
        format_join_command("10.0.0.1", "nope", [HASH_A])
    with pytest.raises(JoinError, match="discovery-token-ca-cert-hash"):
        format_join_command("10.0.0.1", TOKEN, [])
    with pytest.raises(JoinError, match="discovery-token-ca-cert-hash"):
        format_join_command("10.0.0.1", TOKEN, ["md5:abc"])
    with pytest.raises(JoinError, match="discovery-token-ca-cert-hash"):
        format_join_command("10.0.0.1", TOKEN, HASH_A)  # type: ignore[arg-type]
    with pytest.raises(JoinError, match="certificate key"):
        format_join_command("10.0.0.1", TOKEN, [HASH_A], certificate_key=KEY)
    with pytest.raises(JoinError, match="certificate key"):
        format_join_command("10.0.0.1", TOKEN, [HASH_A], control_plane=True, certificate_key="x")


def test_certificate_keys() -> None:
    keys = {generate_certificate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)
    assert validate_certificate_key("AB" * 32) == "ab" * 32
    for bad in ("ab" * 31, "ab" * 33, "zz" * 32, "ab" * 32 + "\n"):
        with pytest.raises(JoinError, match="certificate key"):
            validate_certificate_key(bad)
