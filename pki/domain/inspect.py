"""Human-readable inspection of X.509 certificates for the certificate pages and the upload tool.

Pure ``cryptography`` code. Everything ``inspect_certificate`` returns is JSON-serialisable
(strings, numbers, booleans, lists, dicts) so that the same dict feeds templates and the REST API.
Formats follow what operators compare against on the command line:

- fingerprints as ``openssl x509 -fingerprint`` prints them (upper-case hex pairs joined by colons);
- serial numbers as ``openssl x509 -serial`` (upper-case hex, even number of digits) and in decimal
  (as ``cfssl certinfo`` prints them);
- the SPKI hash as kubeadm's ``--discovery-token-ca-cert-hash`` (``sha256:<hex>``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from pki.domain.x509 import PKIError, parse_failure

# An upload is a handful of certificates; the cap keeps a hostile bundle from costing much work.
MAX_BUNDLE_CERTIFICATES = 100

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----",
    re.DOTALL,
)
_PEM_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----")

# Names as openssl prints them (`openssl x509 -text`), so operators see the same words in both.
_SIGNATURE_ALGORITHMS = {
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.ED25519: "ED25519",
    SignatureAlgorithmOID.ED448: "ED448",
}

_EXTENDED_KEY_USAGES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "server_auth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "client_auth",
    ExtendedKeyUsageOID.CODE_SIGNING: "code_signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "email_protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "time_stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "ocsp_signing",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "any",
}

# In the order of the KeyUsage bit string (RFC 5280 4.2.1.3).
_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

# What an upload holds when it holds no certificate, for a message that tells the operator why.
_NOT_A_CERTIFICATE = {
    "PRIVATE KEY": "a private key",
    "RSA PRIVATE KEY": "a private key",
    "EC PRIVATE KEY": "a private key",
    "ENCRYPTED PRIVATE KEY": "a private key",
    "PUBLIC KEY": "a public key",
    "RSA PUBLIC KEY": "a public key",
    "CERTIFICATE REQUEST": "a certificate signing request",
    "NEW CERTIFICATE REQUEST": "a certificate signing request",
    "X509 CRL": "a certificate revocation list",
}


# --------------------------------------------------------------------------- one certificate


def inspect_certificate(cert: x509.Certificate, now: dt.datetime) -> dict[str, Any]:
    """Everything an operator checks on a certificate, as a JSON-serialisable dict.

    ``now`` must be timezone-aware; ``days_left`` counts whole days until ``not_after`` (negative
    once expired, so a certificate that expired yesterday shows ``-1``).
    """
    now = _aware(now)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    is_ca, path_length = _basic_constraints(cert)
    return {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "self_issued": cert.subject == cert.issuer,
        "serial": {"hex": serial_hex(cert.serial_number), "decimal": str(cert.serial_number)},
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "days_left": math.floor((not_after - now).total_seconds() / 86400),
        "expired": now > not_after,
        "not_yet_valid": now < not_before,
        "sans": _sans(cert),
        "key_usage": _key_usage(cert),
        "extended_key_usage": _extended_key_usage(cert),
        "key": _key_info(cert),
        "signature_algorithm": _signature_algorithm(cert),
        "fingerprints": {
            "sha1": _colon_hex(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - display only
            "sha256": _colon_hex(cert.fingerprint(hashes.SHA256())),
        },
        "spki_sha256": _spki_sha256(cert),
        "subject_key_id": _subject_key_id(cert),
        "authority_key_id": _authority_key_id(cert),
        "is_ca": is_ca,
        "path_length": path_length,
    }


def _aware(now: dt.datetime) -> dt.datetime:
    # A naive datetime is ambiguous (local time or UTC?); refusing it avoids off-by-hours results.
    if now.tzinfo is None:
        raise PKIError("'now' must be timezone-aware")
    return now.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _colon_hex(data: bytes) -> str:
    return data.hex(":").upper()


def serial_hex(serial: int) -> str:
    text = f"{serial:X}"
    # openssl prints whole bytes, so an odd number of digits gets a leading zero.
    return text if len(text) % 2 == 0 else "0" + text


def _name(name: x509.Name) -> dict[str, Any]:
    common_names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        "rfc4514": name.rfc4514_string(),
        "common_name": str(common_names[-1].value) if common_names else None,
        "organizations": [
            str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        ],
        "organizational_units": [
            str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ],
    }


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _sans(cert: x509.Certificate) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {"dns": [], "ip": [], "others": []}
    san = _extension(cert, x509.SubjectAlternativeName)
    if san is None:
        return result
    for general_name in san:
        if isinstance(general_name, x509.DNSName):
            result["dns"].append(general_name.value)
        elif isinstance(general_name, x509.IPAddress):
            result["ip"].append(str(general_name.value))
        else:
            result["others"].append(_other_name(general_name))
    return result


def _other_name(general_name: x509.GeneralName) -> str:
    if isinstance(general_name, x509.RFC822Name):
        return f"email:{general_name.value}"
    if isinstance(general_name, x509.UniformResourceIdentifier):
        return f"uri:{general_name.value}"
    if isinstance(general_name, x509.DirectoryName):
        return f"dirname:{general_name.value.rfc4514_string()}"
    if isinstance(general_name, x509.RegisteredID):
        return f"registered_id:{general_name.value.dotted_string}"
    if isinstance(general_name, x509.OtherName):
        return f"othername:{general_name.type_id.dotted_string}"
    return str(general_name)


def _key_usage(cert: x509.Certificate) -> list[str]:
    usage = _extension(cert, x509.KeyUsage)
    if usage is None:
        return []
    names = [flag for flag in _KEY_USAGE_FLAGS if getattr(usage, flag)]
    # encipher_only/decipher_only raise unless key_agreement is set, so ask only then.
    if usage.key_agreement:
        names += [flag for flag in ("encipher_only", "decipher_only") if getattr(usage, flag)]
    return names


def _extended_key_usage(cert: x509.Certificate) -> list[str]:
    usage = _extension(cert, x509.ExtendedKeyUsage)
    if usage is None:
        return []
    return [_EXTENDED_KEY_USAGES.get(oid, oid.dotted_string) for oid in usage]


def _key_info(cert: x509.Certificate) -> dict[str, Any]:
    try:
        public = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return {"type": "unknown", "bits": None, "curve": None, "description": "unsupported key"}
    if isinstance(public, rsa.RSAPublicKey):
        return _key_dict("RSA", public.key_size, None, f"RSA {public.key_size}")
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(public.curve.name, public.curve.name)
        return _key_dict("ECDSA", public.curve.key_size, curve, f"ECDSA {curve}")
    if isinstance(public, ed25519.Ed25519PublicKey):
        return _key_dict("Ed25519", 256, None, "Ed25519")
    if isinstance(public, ed448.Ed448PublicKey):
        return _key_dict("Ed448", 456, None, "Ed448")
    if isinstance(public, dsa.DSAPublicKey):
        return _key_dict("DSA", public.key_size, None, f"DSA {public.key_size}")
    return _key_dict(type(public).__name__, None, None, type(public).__name__)


def _key_dict(kind: str, bits: int | None, curve: str | None, description: str) -> dict[str, Any]:
    return {"type": kind, "bits": bits, "curve": curve, "description": description}


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return _SIGNATURE_ALGORITHMS.get(oid, oid.dotted_string)


def _spki_sha256(cert: x509.Certificate) -> str:
    # Hash the DER SubjectPublicKeyInfo as it sits in the certificate, which works for every key
    # type (kubeadm's discovery hash; see docs/kubeadm.md section 4).
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _subject_key_id(cert: x509.Certificate) -> str | None:
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    return _colon_hex(ski.digest) if ski is not None else None


def _authority_key_id(cert: x509.Certificate) -> str | None:
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    if aki is None or aki.key_identifier is None:
        return None
    return _colon_hex(aki.key_identifier)


def _basic_constraints(cert: x509.Certificate) -> tuple[bool, int | None]:
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None:
        return False, None
    return bool(constraints.ca), constraints.path_length


# --------------------------------------------------------------------------- uploads


def inspect_pem(data: bytes, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Inspect every certificate of an uploaded PEM bundle (or a single DER certificate).

    Blocks that are not certificates (a key pasted along with its certificate, say) are skipped;
    an upload with no certificate at all raises ``PKIError`` saying what it holds instead. Error
    messages never echo the upload's content.
    """
    moment = dt.datetime.now(dt.UTC) if now is None else _aware(now)
    return [inspect_certificate(cert, moment) for cert in parse_certificates(data)]


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM bundle or DER file, with a clear ``PKIError`` for anything else."""
    if not isinstance(data, bytes | bytearray):
        raise PKIError("the upload must be bytes")
    data = bytes(data)
    if not data.strip():
        raise PKIError("the upload is empty")
    blocks = _PEM_BLOCK.findall(data)
    if len(blocks) != len(_PEM_BEGIN.findall(data)):
        raise PKIError("a PEM block has no matching END line; is the file truncated?")
    if not blocks:
        return [_load_der(data)]
    labels = [label.decode("ascii") for label, _ in blocks]
    certificate_blocks = [
        (index, body) for index, (label, body) in enumerate(blocks, 1) if label == b"CERTIFICATE"
    ]
    if not certificate_blocks:
        raise PKIError(_describe_non_certificate(labels))
    if len(certificate_blocks) > MAX_BUNDLE_CERTIFICATES:
        raise PKIError(
            f"the bundle holds {len(certificate_blocks)} certificates; "
            f"at most {MAX_BUNDLE_CERTIFICATES} are accepted"
        )
    return [_load_pem_block(index, body) for index, body in certificate_blocks]


def _load_pem_block(index: int, body: bytes) -> x509.Certificate:
    pem = b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PKIError(
            f"PEM block {index} is not a valid certificate: {parse_failure(exc)}"
        ) from None


def _load_der(data: bytes) -> x509.Certificate:
    # DER always starts with a SEQUENCE tag; anything else is text or garbage, not a certificate.
    if data[:1] == b"\x30":
        try:
            return x509.load_der_x509_certificate(data)
        except (ValueError, UnsupportedAlgorithm):
            pass
    raise PKIError(
        "not a certificate: expected PEM ('-----BEGIN CERTIFICATE-----') or a DER certificate"
    )


def _describe_non_certificate(labels: list[str]) -> str:
    kinds = sorted({_NOT_A_CERTIFICATE.get(label, f"a '{label}' block") for label in labels})
    holds = " and ".join(kinds)
    message = f"no certificate found: the upload holds {holds}"
    if "a private key" in kinds:
        message += "; upload the certificate (.crt/.pem) instead and keep the key private"
    return message
