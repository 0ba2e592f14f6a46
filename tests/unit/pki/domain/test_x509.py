"""Keys, CAs, signing, PEM and Go-compatible host checks of pki.x509."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.domain.x509 import (
    KEY_ALGORITHMS,
    CertSpec,
    PKIError,
    certificate_to_pem,
    check_host,
    create_ca,
    fingerprint_sha256,
    generate_private_key,
    key_algorithm_of,
    key_description,
    key_matches_certificate,
    load_certificate,
    load_private_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_certificate,
    spki_sha256,
    verify_issued_by,
)

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
CA_SPEC = CertSpec("ca", None, "kubernetes", is_ca=True, validity=dt.timedelta(days=3650))


def leaf_spec(**overrides: object) -> CertSpec:
    values: dict = {
        "name": "apiserver",
        "signer": "ca",
        "common_name": "kube-apiserver",
        "dns_names": ("kubernetes", "cp-1"),
        "ip_addresses": ("10.96.0.1", "10.0.0.11"),
        "usages": ("server",),
        "node": "cp-1",
    }
    values.update(overrides)
    return CertSpec(**values)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = generate_private_key("ECDSA-P256")
    return create_ca(CA_SPEC, key, NOW), key


@pytest.fixture(scope="module")
def rsa_ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = generate_private_key("RSA-2048")
    return create_ca(CA_SPEC, key, NOW), key


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("algorithm", "description"),
    [
        ("RSA-2048", "RSA 2048"),
        ("RSA-3072", "RSA 3072"),
        ("ECDSA-P256", "ECDSA P-256"),
        ("ECDSA-P384", "ECDSA P-384"),
    ],
)
def test_generated_key_matches_algorithm(algorithm: str, description: str) -> None:
    key = generate_private_key(algorithm)
    assert key_description(key) == description
    assert key_description(key.public_key()) == description
    assert key_algorithm_of(key) == algorithm


def test_key_algorithms_are_kubeadms() -> None:
    assert KEY_ALGORITHMS == ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384")


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(PKIError, match="unknown key algorithm 'RSA-1024'"):
        generate_private_key("RSA-1024")


# --------------------------------------------------------------------------- CA


def test_ca_matches_kubeadm_template(ca: tuple) -> None:
    cert, key = ca
    assert cert.subject == cert.issuer
    assert cert.subject.rfc4514_string() == "CN=kubernetes"
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.key_encipherment, ku.value.key_cert_sign) == (
        True,
        True,
        True,
    )
    assert not ku.value.crl_sign
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.AuthorityKeyIdentifier)
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "kubernetes"
    ]
    assert 1 <= cert.serial_number < 2**63
    assert verify_issued_by(cert, cert)


def test_serials_are_random(ca: tuple) -> None:
    _, key = ca
    serials = {create_ca(CA_SPEC, key, NOW).serial_number for _ in range(5)}
    assert len(serials) == 5


def test_create_ca_refuses_a_leaf_spec(ca: tuple) -> None:
    with pytest.raises(PKIError, match="self-signed CA spec"):
        create_ca(leaf_spec(), ca[1], NOW)


def test_naive_now_is_refused(ca: tuple) -> None:
    with pytest.raises(PKIError, match="timezone-aware"):
        create_ca(CA_SPEC, ca[1], dt.datetime(2026, 1, 1))


# --------------------------------------------------------------------------- leaves


def test_server_leaf_matches_kubeadm_template(ca: tuple) -> None:
    ca_cert, ca_key = ca
    key = generate_private_key("ECDSA-P256")
    cert = sign_certificate(leaf_spec(), key.public_key(), ca_cert, ca_key, NOW)
    assert cert.issuer == ca_cert.subject
    assert cert.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=365)
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert ku.value.key_encipherment
    assert not ku.value.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical
    assert not bc.value.ca
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca_cert, x509.SubjectKeyIdentifier).value.digest
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["kubernetes", "cp-1"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.96.0.1"),
        ipaddress.ip_address("10.0.0.11"),
    ]
    assert verify_issued_by(cert, ca_cert)
    assert key_matches_certificate(key, cert)


def test_a_leaf_lasts_its_full_validity_from_the_moment_of_issue() -> None:
    """kubeadm backdates NotBefore by 5 minutes but counts NotAfter from the moment of issue
    (certs.KubeadmCert.GetConfig), so a one-year certificate expires exactly one year later."""
    issued_at = dt.datetime(2026, 3, 1, 9, 30, 15, tzinfo=dt.UTC)
    with time_machine.travel(issued_at, tick=False):
        ca_key = generate_private_key("ECDSA-P256")
        ca_cert = create_ca(CA_SPEC, ca_key)
        cert = sign_certificate(
            leaf_spec(), generate_private_key("ECDSA-P256").public_key(), ca_cert, ca_key
        )
    assert ca_cert.not_valid_before_utc == issued_at - dt.timedelta(minutes=5)
    assert ca_cert.not_valid_after_utc == issued_at + dt.timedelta(hours=87600)
    assert cert.not_valid_before_utc == issued_at - dt.timedelta(minutes=5)
    assert cert.not_valid_after_utc == issued_at + dt.timedelta(hours=8760)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(
        hours=8760, minutes=5
    )


def test_client_leaf_subject_has_organizations_before_cn(ca: tuple) -> None:
    spec = leaf_spec(
        name="admin.conf",
        common_name="kubernetes-admin",
        organizations=("kubeadm:cluster-admins", "team-a"),
        dns_names=(),
        ip_addresses=(),
        usages=("client",),
    )
    cert = sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    rdns = list(cert.subject.rdns)
    assert len(rdns) == 2
    assert {a.value for a in rdns[0]} == {"kubeadm:cluster-admins", "team-a"}
    assert rdns[1].get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)


def test_server_and_client_usage_in_go_order(ca: tuple) -> None:
    spec = leaf_spec(usages=("client", "server"))
    cert = sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]


def test_p384_ca_signs_with_sha384() -> None:
    key = generate_private_key("ECDSA-P384")
    cert = create_ca(CA_SPEC, key, NOW)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha384"


def test_leaf_outliving_its_ca_is_refused(ca: tuple) -> None:
    spec = leaf_spec(validity=dt.timedelta(days=3651))
    with pytest.raises(PKIError, match=r"would expire on .* after its CA 'kubernetes'"):
        sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)


def test_leaf_from_expired_ca_is_refused(ca: tuple) -> None:
    later = NOW + dt.timedelta(days=3651)
    spec = leaf_spec(validity=dt.timedelta(minutes=1))
    with pytest.raises(PKIError, match="has expired"):
        sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, later)


def test_weak_rsa_key_is_refused(rsa_ca: tuple) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key is the input under test
    with pytest.raises(PKIError, match="RSA 1024; RSA keys must have at least 2048 bits"):
        sign_certificate(leaf_spec(), weak.public_key(), *rsa_ca, NOW)
    with pytest.raises(PKIError, match="at least 2048 bits"):
        create_ca(CA_SPEC, weak, NOW)


def test_ca_key_must_match_ca_cert(ca: tuple) -> None:
    other = generate_private_key("ECDSA-P256")
    with pytest.raises(PKIError, match="CA key does not belong to the CA certificate"):
        sign_certificate(leaf_spec(), other.public_key(), ca[0], other, NOW)


def test_leaf_cannot_sign(ca: tuple) -> None:
    key = generate_private_key("ECDSA-P256")
    leaf = sign_certificate(leaf_spec(), key.public_key(), *ca, NOW)
    with pytest.raises(PKIError, match="is not a CA certificate"):
        sign_certificate(leaf_spec(), key.public_key(), leaf, key, NOW)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"usages": ()}, "at least one usage"),
        ({"usages": ("peer",)}, "unknown usage"),
        ({"common_name": ""}, "needs a common name"),
        ({"ip_addresses": ("not-an-ip",)}, "'not-an-ip' is not an IP address"),
        ({"validity": dt.timedelta(0)}, "validity must be positive"),
        ({"is_ca": True}, "use create_ca"),
    ],
)
def test_bad_leaf_specs_are_refused(ca: tuple, overrides: dict, message: str) -> None:
    with pytest.raises(PKIError, match=message):
        sign_certificate(
            leaf_spec(**overrides), generate_private_key("ECDSA-P256").public_key(), *ca, NOW
        )


def test_verify_issued_by_rejects_same_name_other_key(ca: tuple) -> None:
    impostor_key = generate_private_key("ECDSA-P256")
    impostor = create_ca(CA_SPEC, impostor_key, NOW)
    leaf = sign_certificate(leaf_spec(), generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    assert impostor.subject == ca[0].subject
    assert verify_issued_by(leaf, ca[0])
    assert not verify_issued_by(leaf, impostor)


# --------------------------------------------------------------------------- PEM


def test_pem_formats_are_kubeadms(ca: tuple, rsa_ca: tuple) -> None:
    assert private_key_to_pem(rsa_ca[1]).startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert private_key_to_pem(ca[1]).startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert public_key_to_pem(rsa_ca[1]).startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert certificate_to_pem(ca[0]).startswith(b"-----BEGIN CERTIFICATE-----\n")


def test_pem_round_trip(rsa_ca: tuple) -> None:
    cert, key = rsa_ca
    assert load_certificate(certificate_to_pem(cert)) == cert
    assert load_certificate(cert.public_bytes(serialization.Encoding.DER)) == cert
    loaded = load_private_key(private_key_to_pem(key))
    assert key_matches_certificate(loaded, cert)


def test_encrypted_key_needs_its_password(ca: tuple) -> None:
    encrypted = ca[1].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    assert key_matches_certificate(load_private_key(encrypted, b"s3cret"), ca[0])
    with pytest.raises(PKIError, match="wrong password"):
        load_private_key(encrypted, b"wrong")
    with pytest.raises(PKIError, match="cannot load private key"):
        load_private_key(encrypted)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"hello",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
)
def test_garbage_certificate_is_refused(garbage: bytes) -> None:
    with pytest.raises(PKIError):
        load_certificate(garbage)


def test_garbage_key_is_refused() -> None:
    with pytest.raises(PKIError, match="not a valid private key"):
        load_private_key(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")


def test_key_not_matching_certificate(ca: tuple, rsa_ca: tuple) -> None:
    assert key_matches_certificate(ca[1], ca[0])
    assert key_matches_certificate(ca[1].public_key(), ca[0])
    assert not key_matches_certificate(rsa_ca[1], ca[0])
    assert not key_matches_certificate(generate_private_key("ECDSA-P256"), ca[0])


# --------------------------------------------------------------------------- digests


def test_spki_hash_is_sha256_of_subject_public_key_info(rsa_ca: tuple) -> None:
    cert = rsa_ca[0]
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_sha256(cert) == "sha256:" + hashlib.sha256(spki).hexdigest()
    assert len(spki_sha256(cert)) == len("sha256:") + 64


def test_fingerprint_is_colon_hex_of_der(ca: tuple) -> None:
    der = ca[0].public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    assert fingerprint_sha256(ca[0]).replace(":", "") == digest
    assert fingerprint_sha256(ca[0]).count(":") == 31


# --------------------------------------------------------------------------- host checks


@pytest.fixture(scope="module")
def server_cert(ca: tuple) -> x509.Certificate:
    spec = leaf_spec(
        dns_names=("*.apps.example.com", "cp-1", "Kubernetes.Default", "lb.example.internal"),
        ip_addresses=("10.96.0.1", "10.0.0.11", "fd00::1", "::ffff:192.0.2.7"),
    )
    return sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.11",
        "10.96.0.1",
        "fd00::1",
        "[fd00::1]",
        "fd00:0::1",
        "192.0.2.7",
        "cp-1",
        "CP-1",
        "cp-1.",
        "kubernetes.default",
        "x.apps.example.com",
        "lb.example.internal",
    ],
)
def test_hosts_go_accepts(server_cert: x509.Certificate, host: str) -> None:
    result = check_host(server_cert, host)
    assert result.covered, result.message
    assert result.san_to_add is None


ALL_IPS = "10.96.0.1, 10.0.0.11, fd00::1, 192.0.2.7"
ALL_DNS = "*.apps.example.com, cp-1, Kubernetes.Default, lb.example.internal"


@pytest.mark.parametrize(
    ("host", "message", "to_add"),
    [
        ("10.0.0.12", f"x509: certificate is valid for {ALL_IPS}, not 10.0.0.12", "10.0.0.12"),
        ("[fd00::2]", f"x509: certificate is valid for {ALL_IPS}, not fd00::2", "fd00::2"),
        ("cp-2", f"x509: certificate is valid for {ALL_DNS}, not cp-2", "cp-2"),
        # A wildcard covers exactly one label, never the bare domain nor two labels.
        (
            "apps.example.com",
            f"x509: certificate is valid for {ALL_DNS}, not apps.example.com",
            None,
        ),
        (
            "a.b.apps.example.com",
            f"x509: certificate is valid for {ALL_DNS}, not a.b.apps.example.com",
            None,
        ),
    ],
)
def test_hosts_go_rejects(
    server_cert: x509.Certificate, host: str, message: str, to_add: str | None
) -> None:
    result = check_host(server_cert, host)
    assert not result.covered
    assert result.message == message
    assert result.san_to_add == (to_add or host)


def test_ip_host_against_cert_without_ip_sans(ca: tuple) -> None:
    spec = leaf_spec(ip_addresses=())
    cert = sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    result = check_host(cert, "127.0.2.99")
    assert result.message == (
        "x509: cannot validate certificate for 127.0.2.99 because it doesn't contain any IP SANs"
    )


def test_dns_host_against_cert_with_only_ip_sans(ca: tuple) -> None:
    spec = leaf_spec(dns_names=())
    cert = sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    assert check_host(cert, "cp-1").message == (
        "x509: certificate is not valid for any names, but wanted to match cp-1"
    )


def test_common_name_is_never_used(ca: tuple) -> None:
    spec = leaf_spec(common_name="cp-1", dns_names=(), ip_addresses=())
    cert = sign_certificate(spec, generate_private_key("ECDSA-P256").public_key(), *ca, NOW)
    result = check_host(cert, "cp-1")
    assert not result.covered
    assert (
        result.message == "x509: certificate relies on legacy Common Name field, use SANs instead"
    )
