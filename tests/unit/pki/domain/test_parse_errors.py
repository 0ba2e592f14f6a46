"""What an operator reads when a PEM or DER upload cannot be parsed: a sentence saying what is
wrong, never cryptography's own text (Rust type names, ASN.1 tags, a FAQ URL)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pki.domain import cfssl
from pki.domain.inspect import inspect_pem
from pki.domain.x509 import (
    PKIError,
    load_certificate,
    load_certificates,
    load_private_key,
    load_public_key,
)

# Traces of the library's wording that must never reach a page.
LIBRARY_TEXT = re.compile(
    r"https?://|cryptography\.io|ParseError|InvalidData|MalformedFraming|ShortData|Tag \{|"
    r"asn1|ASN\.1|deserialize|\{ kind"
)


def _pem(label: str, body: bytes) -> bytes:
    return f"-----BEGIN {label}-----\n".encode() + body + f"\n-----END {label}-----\n".encode()


def _certificate_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


DER = _certificate_der()
TRUNCATED = _pem("CERTIFICATE", base64.encodebytes(DER[: len(DER) // 2]).strip())
DAMAGED = _pem("CERTIFICATE", b"MIIB!!not*base64")
NOT_DER = _pem("CERTIFICATE", base64.b64encode(b"not a certificate at all"))

CASES: list[tuple[str, Callable[[], Any], str]] = [
    ("inspect, damaged base64", lambda: inspect_pem(DAMAGED), "base64 text"),
    ("inspect, truncated", lambda: inspect_pem(TRUNCATED), "truncated"),
    ("inspect, not DER", lambda: inspect_pem(NOT_DER), "ends too early"),
    ("certificate, damaged", lambda: load_certificate(DAMAGED), "base64 text"),
    ("certificate, truncated DER", lambda: load_certificate(DER[:40]), "truncated"),
    ("bundle, damaged", lambda: load_certificates(DAMAGED), "base64 text"),
    ("bundle, no PEM", lambda: load_certificates(b"nothing"), "BEGIN and END lines"),
    (
        "private key, damaged",
        lambda: load_private_key(_pem("RSA PRIVATE KEY", b"AAAA")),
        "DER structure",
    ),
    (
        "public key, damaged",
        lambda: load_public_key(_pem("PUBLIC KEY", b"AAAA")),
        "DER structure",
    ),
    (
        "cfssl CSR, damaged",
        lambda: cfssl.sign_pkcs10(_pem("CERTIFICATE REQUEST", b"AAAA"), None, *_ca()),
        "DER structure",
    ),
]


def _ca() -> tuple[Any, ...]:
    config = cfssl.parse_ca_config(
        '{"signing": {"default": {"expiry": "1h", "usages": ["signing", "server auth"]}}}'
    )
    return config, x509.load_der_x509_certificate(DER), ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(("what", "call", "words"), CASES, ids=[case[0] for case in CASES])
def test_parse_errors_are_sentences_without_the_librarys_text(
    what: str, call: Callable[[], Any], words: str
) -> None:
    with pytest.raises(PKIError) as caught:
        call()
    message = str(caught.value)
    assert words in message, message
    assert not LIBRARY_TEXT.search(message), message


def test_a_key_with_the_wrong_password_or_none_says_so() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right"),
    )
    with pytest.raises(PKIError, match="the password is wrong"):
        load_private_key(encrypted, b"wrong")
    with pytest.raises(PKIError, match="the key is encrypted: give its password"):
        load_private_key(encrypted)
