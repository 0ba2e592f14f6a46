"""Certificate inspection agrees with openssl on everything an operator compares."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.domain.inspect import MAX_BUNDLE_CERTIFICATES, inspect_certificate, inspect_pem
from pki.domain.x509 import PKIError

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def _make_cert(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    serial: int,
    is_ca: bool = False,
    path_length: int | None = None,
    not_after: dt.datetime = NOW + dt.timedelta(days=30, hours=5),
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ops"),
            x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver"),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("node-a"),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
            x509.IPAddress(ipaddress.ip_address("fd00::1")),
            x509.RFC822Name("ops@example.com"),
            x509.UniformResourceIdentifier("spiffe://cluster.local/ns/x"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, is_ca, is_ca, False, False), True
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), True)
        .add_extension(san, False)
    )
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _openssl(cert: x509.Certificate, tmp_path: Path, *args: str) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(_pem(cert))
    result = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def _openssl_sans(text: str) -> tuple[list[str], list[str]]:
    block = text.split("X509v3 Subject Alternative Name:", 1)[1].splitlines()[1]
    entries = [e.strip() for e in block.split(",")]
    dns = [e.removeprefix("DNS:") for e in entries if e.startswith("DNS:")]
    ips = [
        str(ipaddress.ip_address(e.removeprefix("IP Address:")))
        for e in entries
        if e.startswith("IP Address:")
    ]
    return dns, ips


@pytest.mark.parametrize("key_fixture", ["rsa_key", "ec_key"])
def test_it_agrees_with_openssl_on_fingerprints_serial_and_sans(
    key_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    key = request.getfixturevalue(key_fixture)
    # A serial whose top bit is set needs a sign byte in DER: openssl still prints the magnitude.
    cert = _make_cert(key, serial=0xF1E2D3C4B5A6978812345)
    info = inspect_certificate(cert, NOW)

    text = _openssl(cert, tmp_path, "-text", "-fingerprint", "-sha256")
    sha256 = re.search(r"sha256 Fingerprint=([0-9A-F:]+)", text, re.IGNORECASE)
    assert sha256 is not None
    assert info["fingerprints"]["sha256"] == sha256.group(1)
    sha1 = _openssl(cert, tmp_path, "-fingerprint", "-sha1").strip()
    assert info["fingerprints"]["sha1"] == sha1.split("=", 1)[1]
    serial = _openssl(cert, tmp_path, "-serial").strip()
    assert info["serial"]["hex"] == serial.split("=", 1)[1]
    assert info["serial"]["decimal"] == str(0xF1E2D3C4B5A6978812345)

    dns, ips = _openssl_sans(text)
    assert info["sans"]["dns"] == dns == ["kubernetes.default.svc", "node-a"]
    assert info["sans"]["ip"] == ips == ["10.96.0.1", "fd00::1"]
    assert info["sans"]["others"] == ["email:ops@example.com", "uri:spiffe://cluster.local/ns/x"]


def test_it_reports_names_dates_usages_and_key(rsa_key: rsa.RSAPrivateKey) -> None:
    cert = _make_cert(rsa_key, serial=5)
    info = inspect_certificate(cert, NOW)

    assert info["subject"]["common_name"] == "kube-apiserver"
    assert info["subject"]["organizations"] == ["system:masters", "ops"]
    assert info["subject"]["rfc4514"] == "CN=kube-apiserver,O=ops,O=system:masters"
    assert info["issuer"]["common_name"] == "kubernetes"
    assert info["serial"]["hex"] == "05"
    assert info["not_before"] == "2030-05-31T12:00:00Z"
    assert info["not_after"] == "2030-07-01T17:00:00Z"
    assert info["days_left"] == 30
    assert info["expired"] is False
    assert info["key_usage"] == ["digital_signature", "key_encipherment"]
    assert info["extended_key_usage"] == ["server_auth", "client_auth"]
    assert info["key"] == {"type": "RSA", "bits": 2048, "curve": None, "description": "RSA 2048"}
    assert info["signature_algorithm"] == "sha256WithRSAEncryption"
    assert info["is_ca"] is False
    assert info["path_length"] is None


def test_it_reports_a_ca_with_path_length_and_ec_key(
    ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    cert = _make_cert(ec_key, serial=77, is_ca=True, path_length=1)
    info = inspect_certificate(cert, NOW)

    assert info["is_ca"] is True
    assert info["path_length"] == 1
    assert info["key_usage"] == [
        "digital_signature",
        "key_encipherment",
        "key_cert_sign",
        "crl_sign",
    ]
    assert info["key"]["curve"] == "P-384"
    assert info["signature_algorithm"] == "ecdsa-with-SHA256"
    assert info["signature_algorithm"] in _openssl(cert, tmp_path, "-text")


def test_spki_hash_matches_the_kubeadm_discovery_pipeline(
    ec_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    cert = _make_cert(ec_key, serial=9)
    path = tmp_path / "ca.crt"
    path.write_bytes(_pem(cert))
    # The pipeline of docs/kubeadm.md section 4, which works for ECDSA keys too.
    pipeline = (
        f"openssl x509 -pubkey -noout -in {path} | openssl pkey -pubin -outform der"
        " | openssl dgst -sha256 -hex | sed 's/^.* //'"
    )
    expected = subprocess.run(
        ["sh", "-c", pipeline], check=True, capture_output=True, text=True
    ).stdout.strip()

    assert inspect_certificate(cert, NOW)["spki_sha256"] == f"sha256:{expected}"


def test_days_left_is_negative_once_expired(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = _make_cert(ec_key, serial=3, not_after=NOW - dt.timedelta(hours=1))
    info = inspect_certificate(cert, NOW)

    assert info["expired"] is True
    assert info["days_left"] == -1


def test_it_refuses_a_naive_now(ec_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(PKIError, match="timezone-aware"):
        inspect_certificate(_make_cert(ec_key, serial=3), dt.datetime(2030, 1, 1))


def test_inspect_pem_reads_every_certificate_of_a_bundle_in_order(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    first, second = _make_cert(rsa_key, serial=1), _make_cert(ec_key, serial=2)
    key_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # A key pasted between the certificates is skipped, not inspected.
    bundle = _pem(first) + key_pem + _pem(second)

    infos = inspect_pem(bundle, now=NOW)

    assert [i["serial"]["decimal"] for i in infos] == ["1", "2"]
    assert [i["key"]["type"] for i in infos] == ["RSA", "ECDSA"]


def test_inspect_pem_accepts_a_der_certificate(ec_key: ec.EllipticCurvePrivateKey) -> None:
    cert = _make_cert(ec_key, serial=42)
    infos = inspect_pem(cert.public_bytes(serialization.Encoding.DER), now=NOW)
    assert [i["serial"]["decimal"] for i in infos] == ["42"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \n\t", "empty"),
        (b"hello world, not a certificate", "expected PEM"),
        (b"\x30\x82\x01\x00garbage", "expected PEM"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "no matching END"),
        (b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "block 1"),
    ],
)
def test_inspect_pem_rejects_garbage(data: bytes, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        inspect_pem(data)


def test_inspect_pem_says_when_it_got_a_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(PKIError, match="holds a private key") as excinfo:
        inspect_pem(key_pem)
    # The message must not echo key material back to the page.
    assert "MII" not in str(excinfo.value)


def test_inspect_pem_says_when_it_got_a_csr(ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(ec_key, hashes.SHA256())
    )
    with pytest.raises(PKIError, match="certificate signing request"):
        inspect_pem(csr.public_bytes(serialization.Encoding.PEM))


def test_inspect_pem_caps_the_bundle_size(ec_key: ec.EllipticCurvePrivateKey) -> None:
    pem = _pem(_make_cert(ec_key, serial=8))
    with pytest.raises(PKIError, match=f"at most {MAX_BUNDLE_CERTIFICATES}"):
        inspect_pem(pem * (MAX_BUNDLE_CERTIFICATES + 1))
