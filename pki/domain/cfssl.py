"""cfssl compatibility: read the JSON files of "binary install" guides and sign like ``cfssl``.

Guides that install Kubernetes components as systemd services (docs/kubeadm.md §12) keep their
PKI as ``ca-csr.json`` (subject, hosts, key, CA expiry), ``ca-config.json`` (signing profiles) and
per-certificate ``*-csr.json`` files. This module parses those files and produces certificates
whose fields match what ``cfssl gencert`` writes for the same input (cfssl 1.2 as Debian ships it):

- subject built like Go's ``pkix.Name``: C, ST, L, O, OU, CN, every field of every ``names`` entry
  collected into one (multi-valued) RDN per attribute type;
- NotBefore = now rounded to the minute, minus five minutes; NotAfter = NotBefore + expiry;
- 159-bit random serial; signature hash chosen from the CA key as cfssl's ``DefaultSigAlgo`` does
  (SHA-512 for RSA >= 4096, SHA-384 for RSA >= 3072 and P-384, SHA-256 otherwise);
- CA: key usage certSign + cRLSign (critical), basicConstraints CA:TRUE (critical), a subject key
  id, and only the IP addresses of ``hosts`` (cfssl drops DNS and e-mail names from CAs);
- leaf: key usage and extended key usage from the profile's ``usages``, basicConstraints CA:FALSE,
  subject and authority key ids, SANs from ``hosts`` (DNS, e-mail, then IP, as Go orders them).

Deliberate differences, where cfssl's behaviour would hurt an operator: a certificate that would
outlive its CA is refused (cfssl issues it), hosts that are no IP, e-mail or DNS name are refused
(cfssl writes them as DNS names), ECDSA P-521 is refused (the panel signs with P-256/P-384 only)
and signing profiles that make CAs (``ca_constraint``) are not supported.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.domain import durations
from pki.domain.x509 import (
    MIN_RSA_BITS,
    PKIError,
    key_description,
    key_matches_certificate,
    parse_failure,
    random_serial,
    subject_identity,
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# cfssl's defaults: ``cfssl gencert -initca`` gives a CA five years, ``cfssl gencert`` without a
# config signs for one year with these usages, and keys default to ECDSA P-256.
DEFAULT_CA_EXPIRY = dt.timedelta(hours=43800)
DEFAULT_EXPIRY = dt.timedelta(hours=8760)
DEFAULT_USAGES = ("signing", "key encipherment", "server auth", "client auth")
DEFAULT_KEY_ALGO = "ecdsa"
DEFAULT_KEY_SIZES = {"rsa": 2048, "ecdsa": 256}
# cfssl draws 159 random bits: positive, and within RFC 5280's 20 octets once DER-encoded.
CFSSL_SERIAL_LIMIT = 2**159
MAX_RSA_BITS = 8192
ECDSA_SIZES = {256: ec.SECP256R1, 384: ec.SECP384R1}
BACKDATE = dt.timedelta(minutes=5)
# No real chain has more intermediate CAs than this; x509 cannot encode huge ones at all.
MAX_PATHLEN = 32
# The largest duration Go's time.Duration (int64 nanoseconds) can hold.
MAX_DURATION = durations.MAX_DURATION

# cfssl's usage names (config.KeyUsage and config.ExtKeyUsage in cfssl's source).
KEY_USAGES = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
EXT_KEY_USAGES = {
    "any": x509.ObjectIdentifier("2.5.29.37.0"),
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}

_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


# --------------------------------------------------------------------------- durations


def parse_duration(text: str) -> dt.timedelta:
    """Parse a Go duration such as ``175200h``, ``8760h0m0s`` or ``1.5h`` into a timedelta.

    Every duration in cfssl's files is a validity, so zero and negative values are refused too.
    """
    if not isinstance(text, str):
        raise PKIError(f"a duration must be a string such as '8760h', got {text!r}")
    if not text.strip():
        raise PKIError("empty duration; use a Go duration such as '8760h'")
    try:
        result = durations.parse_go_duration(text)
    except durations.DurationError as error:
        if error.reason == "out of range":
            raise PKIError(
                f"duration {text!r} is out of range (at most about {durations.MAX_TEXT})"
            ) from None
        raise PKIError(
            f"invalid duration {text!r}: use a number with a unit (h, m, s, ms, us, ns), "
            "such as '8760h' or '8760h0m0s'"
        ) from None
    if result < dt.timedelta(0):
        raise PKIError(f"duration {text!r} is negative; a validity must be positive")
    if result == dt.timedelta(0):
        raise PKIError(f"duration {text!r} is zero; a validity must be positive")
    return result


# --------------------------------------------------------------------------- CSR JSON


@dataclass(frozen=True)
class KeyRequest:
    """The ``key`` object of a CSR JSON: ``rsa`` or ``ecdsa`` and a size in bits."""

    algo: str = DEFAULT_KEY_ALGO
    size: int = DEFAULT_KEY_SIZES[DEFAULT_KEY_ALGO]


@dataclass(frozen=True)
class SubjectName:
    """One entry of ``names``: cfssl's ``C``, ``ST``, ``L``, ``O`` and ``OU``."""

    country: str = ""
    province: str = ""
    locality: str = ""
    organization: str = ""
    organizational_unit: str = ""


@dataclass(frozen=True)
class CsrRequest:
    """A cfssl CSR JSON (``ca-csr.json`` or a ``*-csr.json``).

    ``ca_expiry`` and the path length fields come from the ``ca`` object and matter only for
    ``create_ca_from_csr``.
    """

    common_name: str = ""
    hosts: tuple[str, ...] = ()
    key: KeyRequest = field(default_factory=KeyRequest)
    names: tuple[SubjectName, ...] = ()
    ca_expiry: dt.timedelta | None = None
    ca_pathlen: int = 0
    ca_pathlen_zero: bool = False


_NAME_FIELDS = {
    "C": "country",
    "ST": "province",
    "L": "locality",
    "O": "organization",
    "OU": "organizational_unit",
}


def parse_ca_csr(json_text: str | bytes) -> CsrRequest:
    """Parse a cfssl CSR JSON (``CN``, ``hosts``, ``key``, ``names``, ``ca``)."""
    document = _load_json(json_text, "CSR JSON")
    common_name = _optional_string(document, "CN", "CSR JSON")
    hosts = _hosts(document.get("hosts"))
    key = _key_request(document.get("key"))
    names = _names(document.get("names"))
    expiry, pathlen, pathlen_zero = _ca_section(document.get("ca"))
    return CsrRequest(common_name, hosts, key, names, expiry, pathlen, pathlen_zero)


# A leaf's CSR JSON has the same shape as the CA's.
parse_csr = parse_ca_csr


def _load_json(json_text: str | bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(json_text)
    except (ValueError, TypeError) as exc:
        raise PKIError(f"the {what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise PKIError(f"the {what} nests too deeply to be a cfssl file") from None
    if not isinstance(document, dict):
        raise PKIError(f"the {what} must be a JSON object")
    return document


def _optional_string(document: Mapping[str, Any], key: str, where: str) -> str:
    value = document.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PKIError(f"{where}: '{key}' must be a string")
    return value


def _hosts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
        raise PKIError("'hosts' must be a list of strings")
    for host in value:
        _classify_host(host)
    return tuple(value)


def _key_request(value: Any) -> KeyRequest:
    if value is None:
        return KeyRequest()
    if not isinstance(value, dict):
        raise PKIError('\'key\' must be an object such as {"algo": "rsa", "size": 2048}')
    algo = value.get("algo", DEFAULT_KEY_ALGO)
    if algo not in DEFAULT_KEY_SIZES:
        raise PKIError(f"unknown key algorithm {algo!r}; cfssl keys are 'rsa' or 'ecdsa'")
    size = value.get("size", DEFAULT_KEY_SIZES[algo])
    if not isinstance(size, int) or isinstance(size, bool):
        raise PKIError(f"key size must be a number of bits, got {size!r}")
    if algo == "rsa" and size < MIN_RSA_BITS:
        raise PKIError(f"RSA key size {size} is too weak; use at least {MIN_RSA_BITS} bits")
    if algo == "rsa" and size > MAX_RSA_BITS:
        raise PKIError(f"RSA key size {size} is too large; use at most {MAX_RSA_BITS} bits")
    if algo == "ecdsa" and size not in ECDSA_SIZES:
        raise PKIError(f"ECDSA key size {size} is not supported; use 256 (P-256) or 384 (P-384)")
    return KeyRequest(algo, size)


def _names(value: Any) -> tuple[SubjectName, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(n, dict) for n in value):
        raise PKIError("'names' must be a list of objects with C, ST, L, O and OU")
    names = []
    for entry in value:
        fields = {attr: _optional_string(entry, key, "names") for key, attr in _NAME_FIELDS.items()}
        names.append(SubjectName(**fields))
    return tuple(names)


def _ca_section(value: Any) -> tuple[dt.timedelta | None, int, bool]:
    if value is None:
        return None, 0, False
    if not isinstance(value, dict):
        raise PKIError('\'ca\' must be an object such as {"expiry": "87600h"}')
    expiry_text = value.get("expiry")
    expiry = parse_duration(expiry_text) if expiry_text else None
    pathlen = value.get("pathlen", 0)
    if not isinstance(pathlen, int) or isinstance(pathlen, bool) or pathlen < 0:
        raise PKIError("'ca.pathlen' must be a non-negative number")
    if pathlen > MAX_PATHLEN:
        raise PKIError(f"'ca.pathlen' must be at most {MAX_PATHLEN} (CAs below this one)")
    pathlen_zero = value.get("pathlenzero", False)
    if not isinstance(pathlen_zero, bool):
        raise PKIError("'ca.pathlenzero' must be true or false")
    return expiry, pathlen, pathlen_zero


# --------------------------------------------------------------------------- signing config


@dataclass(frozen=True)
class SigningProfile:
    """A profile of ``ca-config.json``: its usages (cfssl names) and validity."""

    usages: tuple[str, ...]
    expiry: dt.timedelta

    @property
    def key_usage(self) -> x509.KeyUsage | None:
        """The KeyUsage extension the usages ask for, or None when they name none."""
        flags = {KEY_USAGES[u] for u in self.usages if u in KEY_USAGES}
        if not flags:
            return None
        return x509.KeyUsage(**{flag: flag in flags for flag in _KEY_USAGE_FLAGS})

    @property
    def extended_key_usage(self) -> x509.ExtendedKeyUsage | None:
        """Extended key usages in the order the profile lists them, or None."""
        oids: list[x509.ObjectIdentifier] = []
        for usage in self.usages:
            oid = EXT_KEY_USAGES.get(usage)
            if oid is not None and oid not in oids:
                oids.append(oid)
        return x509.ExtendedKeyUsage(oids) if oids else None

    @property
    def serves(self) -> bool:
        """Whether its certificates authenticate a server: "server auth" or "any", or no extended
        key usage at all (Go's TLS clients accept a certificate without one for any purpose)."""
        eku = self.extended_key_usage
        return eku is None or any(
            oid in eku for oid in (ExtendedKeyUsageOID.SERVER_AUTH, EXT_KEY_USAGES["any"])
        )


@dataclass(frozen=True)
class SigningConfig:
    """``ca-config.json``'s ``signing`` section."""

    default: SigningProfile
    profiles: Mapping[str, SigningProfile]

    def profile(self, name: str | None) -> SigningProfile:
        """The named profile (the default one for None or ""), or PKIError listing the known."""
        if not name:
            if not self.default.usages:
                # cfssl accepts a usage-less default (guides write one just for its expiry) and
                # fails only when something is signed with it.
                known = ", ".join(sorted(self.profiles)) or "none"
                raise PKIError(f"the default profile has no usages; pick a profile: {known}")
            return self.default
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise PKIError(f"unknown signing profile {name!r}; known profiles: {known}") from None


def parse_ca_config(json_text: str | bytes) -> SigningConfig:
    """Parse ``ca-config.json``; refuses what cfssl refuses (missing expiry or usages)."""
    document = _load_json(json_text, "signing config")
    signing = document.get("signing")
    if not isinstance(signing, dict):
        raise PKIError("the signing config has no 'signing' object")
    default_value = signing.get("default")
    if default_value is None:
        default = SigningProfile(DEFAULT_USAGES, DEFAULT_EXPIRY)
    else:
        default = _profile("default", default_value, usages_required=False)
    profiles_value = signing.get("profiles") or {}
    if not isinstance(profiles_value, dict):
        raise PKIError("'signing.profiles' must be an object of named profiles")
    profiles = {name: _profile(name, value) for name, value in profiles_value.items()}
    return SigningConfig(default, profiles)


def _profile(name: str, value: Any, *, usages_required: bool = True) -> SigningProfile:
    if not isinstance(value, dict):
        raise PKIError(f"profile {name!r} must be an object with 'usages' and 'expiry'")
    constraint = value.get("ca_constraint")
    if isinstance(constraint, dict) and constraint.get("is_ca"):
        raise PKIError(f"profile {name!r}: profiles that issue CAs are not supported")
    expiry_text = value.get("expiry")
    if not expiry_text:
        raise PKIError(f'profile {name!r} has no expiry; add one such as "8760h"')
    expiry = parse_duration(expiry_text)
    usages_value = value.get("usages")
    if usages_value is None and not usages_required:
        usages_value = []
    elif not isinstance(usages_value, list) or not usages_value:
        raise PKIError(f'profile {name!r} has no usages; list some such as "server auth"')
    usages = tuple(_usage(name, usage) for usage in usages_value)
    key_usages = {KEY_USAGES[u] for u in usages if u in KEY_USAGES}
    if key_usages & {"encipher_only", "decipher_only"} and "key_agreement" not in key_usages:
        raise PKIError(f"profile {name!r}: 'encipher only'/'decipher only' need 'key agreement'")
    return SigningProfile(usages, expiry)


def _usage(profile: str, usage: Any) -> str:
    if not isinstance(usage, str) or (usage not in KEY_USAGES and usage not in EXT_KEY_USAGES):
        known = ", ".join(sorted({*KEY_USAGES, *EXT_KEY_USAGES}))
        raise PKIError(f"profile {profile!r}: unknown usage {usage!r}; cfssl knows: {known}")
    return usage


# --------------------------------------------------------------------------- certificates


def create_ca_from_csr(
    req: CsrRequest, now: dt.datetime | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    """Self-signed CA and its new key, as ``cfssl gencert -initca ca-csr.json`` makes them."""
    subject = _subject(req.names, req.common_name)
    if not list(subject):
        raise PKIError("the CA CSR has no subject: give it a CN or names")
    key = generate_key(req.key)
    not_before = _not_before(now)
    expiry = req.ca_expiry or DEFAULT_CA_EXPIRY
    if req.ca_pathlen > 0:
        path_length: int | None = req.ca_pathlen
    else:
        # Go needs MaxPathLenZero to write a zero path length; otherwise zero means "no limit".
        path_length = 0 if req.ca_pathlen_zero else None
    ips = [x509.IPAddress(ipaddress.ip_address(h)) for h in req.hosts if _is_ip(h)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(random_serial(CFSSL_SERIAL_LIMIT))
        .not_valid_before(not_before)
        .not_valid_after(not_before + expiry)
        .add_extension(_key_usage_flags({"key_cert_sign", "crl_sign"}), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    # cfssl keeps a CA's IP addresses but drops its DNS and e-mail names.
    if ips:
        builder = builder.add_extension(x509.SubjectAlternativeName(ips), critical=False)
    return builder.sign(key, _signature_hash(key)), key


def generate_key(request: KeyRequest) -> PrivateKey:
    """A new key as ``cfssl gencert`` generates it for the CSR's ``key`` object."""
    if request.algo == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=request.size)
    if request.algo == "ecdsa" and request.size in ECDSA_SIZES:
        return ec.generate_private_key(ECDSA_SIZES[request.size]())
    raise PKIError(f"unsupported key request {request.algo} {request.size}")


def sign_csr_json(
    req: CsrRequest,
    profile_name: str | None,
    config: SigningConfig,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: dt.datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """Generate a key and sign it like ``cfssl gencert -ca … -config … -profile NAME csr.json``."""
    profile = config.profile(profile_name)
    subject = _subject(req.names, req.common_name)
    _check_ca(ca_cert, ca_key)
    key = generate_key(req.key)
    sans = _sans_from_hosts(req.hosts)
    cert = _sign_leaf(subject, key.public_key(), sans, profile, ca_cert, ca_key, now)
    return cert, key


def sign_pkcs10(
    csr_pem: bytes,
    profile_name: str | None,
    config: SigningConfig,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Sign a PKCS#10 request like ``cfssl sign -ca … -config … -profile NAME req.csr``.

    The subject is re-encoded as Go re-encodes it (C, ST, L, O, OU, CN; other attributes such as
    emailAddress are dropped) and the hosts come from the request's SAN extension.
    """
    profile = config.profile(profile_name)
    csr = _load_csr(csr_pem)
    public_key = csr.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise PKIError(f"the CSR's key is a {type(public_key).__name__}; use RSA or ECDSA")
    _check_requested_key(public_key)
    _check_ca(ca_cert, ca_key)
    subject = _go_subject(csr.subject)
    sans = _csr_sans(csr)
    return _sign_leaf(subject, public_key, sans, profile, ca_cert, ca_key, now)


@dataclass(frozen=True)
class RequestedIdentity:
    """What a certificate signed from a request says to the API server: the CN is the user,
    every O a group; ``hosts`` are its SANs (DNS, e-mail, IP, URI) as text."""

    common_name: str
    organizations: tuple[str, ...]
    hosts: tuple[str, ...]


def csr_json_identity(req: CsrRequest) -> RequestedIdentity:
    """The identity ``sign_csr_json`` would sign for ``req`` (same subject, same SANs)."""
    return _identity(_subject(req.names, req.common_name), _sans_from_hosts(req.hosts))


def pkcs10_identity(csr_pem: bytes) -> RequestedIdentity:
    """The identity ``sign_pkcs10`` would sign for the PKCS#10 request (PKIError if invalid)."""
    csr = _load_csr(csr_pem)
    return _identity(_go_subject(csr.subject), _csr_sans(csr))


def _identity(subject: x509.Name, sans: list[x509.GeneralName]) -> RequestedIdentity:
    common_name, organizations = subject_identity(subject)
    return RequestedIdentity(
        common_name=common_name,
        organizations=organizations,
        hosts=tuple(str(name.value) for name in sans),
    )


def _load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    if not isinstance(csr_pem, bytes | bytearray):
        raise PKIError("the CSR must be bytes")
    try:
        if b"-----BEGIN" in csr_pem:
            csr = x509.load_pem_x509_csr(bytes(csr_pem))
        else:
            csr = x509.load_der_x509_csr(bytes(csr_pem))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PKIError(f"not a valid PKCS#10 certificate request: {parse_failure(exc)}") from None
    if not csr.is_signature_valid:
        # The signature proves the requester holds the private key; without it anyone could get
        # a certificate for someone else's public key.
        raise PKIError("CSR signature is invalid")
    return csr


def _check_requested_key(public_key: PublicKey) -> None:
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        raise PKIError(f"the CSR's key is RSA {public_key.key_size}; use at least {MIN_RSA_BITS}")
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.key_size not in (
        ECDSA_SIZES
    ):
        raise PKIError(
            f"the CSR's key is {key_description(public_key)}; use ECDSA P-256 or P-384, or RSA"
        )


def _check_ca(ca_cert: x509.Certificate, ca_key: PrivateKey) -> None:
    if not key_matches_certificate(ca_key, ca_cert):
        raise PKIError("the CA key does not match the CA certificate")
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PKIError("the signing certificate is not a CA (basicConstraints CA:FALSE)")


def _sign_leaf(
    subject: x509.Name,
    public_key: PublicKey,
    sans: list[x509.GeneralName],
    profile: SigningProfile,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: dt.datetime | None,
) -> x509.Certificate:
    not_before = _not_before(now)
    not_after = not_before + profile.expiry
    ca_end = ca_cert.not_valid_after_utc
    if not_before + BACKDATE > ca_end:
        raise PKIError(f"the CA expired on {ca_end:%Y-%m-%d %H:%M} UTC")
    if not_after > ca_end:
        raise PKIError(
            f"the certificate would be valid until {not_after:%Y-%m-%d %H:%M} UTC, after its CA "
            f"expires ({ca_end:%Y-%m-%d %H:%M} UTC); shorten the profile's expiry"
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(random_serial(CFSSL_SERIAL_LIMIT))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    # Extensions in the order Go's CreateCertificate writes them.
    if profile.key_usage is not None:
        builder = builder.add_extension(profile.key_usage, critical=True)
    if profile.extended_key_usage is not None:
        builder = builder.add_extension(profile.extended_key_usage, critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    aki = _authority_key_id(ca_cert)
    if aki is not None:
        builder = builder.add_extension(aki, critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, _signature_hash(ca_key))


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier | None:
    # Go copies the CA's own subject key id and writes no AKI when the CA has none.
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return x509.AuthorityKeyIdentifier(ski.digest, None, None)


# --------------------------------------------------------------------------- subjects and SANs

# Go's pkix.Name.ToRDNSequence order; each type becomes one RDN holding all its values.
_GO_SUBJECT_ORDER = (
    NameOID.COUNTRY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.POSTAL_CODE,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
    NameOID.SERIAL_NUMBER,
)
# Go keeps only the last value of these single-valued fields.
_GO_SINGLE_VALUED = (NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER)
_NAME_OIDS = {
    "country": NameOID.COUNTRY_NAME,
    "province": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizational_unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
}


def _subject(names: tuple[SubjectName, ...], common_name: str) -> x509.Name:
    """Subject as cfssl builds it: every names entry's fields appended per type, then the CN."""
    values: dict[x509.ObjectIdentifier, list[str]] = {}
    for entry in names:
        for attr, oid in _NAME_OIDS.items():
            value = getattr(entry, attr)
            if value:
                values.setdefault(oid, []).append(value)
    if common_name:
        values[NameOID.COMMON_NAME] = [common_name]
    return _go_name(values)


def _go_subject(name: x509.Name) -> x509.Name:
    """A CSR's subject after Go's parse-and-re-encode round trip."""
    values: dict[x509.ObjectIdentifier, list[str]] = {}
    for attribute in name:
        if attribute.oid not in _GO_SUBJECT_ORDER:
            continue
        text = str(attribute.value)
        if attribute.oid in _GO_SINGLE_VALUED:
            values[attribute.oid] = [text]
        else:
            values.setdefault(attribute.oid, []).append(text)
    return _go_name(values)


def _go_name(values: Mapping[x509.ObjectIdentifier, list[str]]) -> x509.Name:
    rdns = []
    for oid in _GO_SUBJECT_ORDER:
        if values.get(oid):
            try:
                attributes = [x509.NameAttribute(oid, v) for v in values[oid]]
            except ValueError as exc:
                raise PKIError(f"invalid subject field: {exc}") from None
            rdns.append(x509.RelativeDistinguishedName(attributes))
    return x509.Name(rdns)


# A DNS-1123-style name (underscores allowed, as Go allows them), optionally a left-most wildcard.
_DNS_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*\.?$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _classify_host(host: str) -> str:
    """``ip``, ``email`` or ``dns``, in the order cfssl tries them; PKIError for anything else."""
    if _is_ip(host):
        return "ip"
    if _EMAIL.match(host):
        return "email"
    if len(host) <= 253 and _DNS_NAME.match(host):
        return "dns"
    raise PKIError(f"host {host!r} is neither an IP address, an e-mail address nor a DNS name")


def _sans_from_hosts(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    by_kind: dict[str, list[x509.GeneralName]] = {"dns": [], "email": [], "ip": []}
    for host in hosts:
        kind = _classify_host(host)
        if kind == "ip":
            by_kind[kind].append(x509.IPAddress(ipaddress.ip_address(host)))
        elif kind == "email":
            by_kind[kind].append(x509.RFC822Name(host))
        else:
            by_kind[kind].append(x509.DNSName(host))
    # Go writes SANs grouped by type: DNS names, e-mail addresses, IP addresses.
    return by_kind["dns"] + by_kind["email"] + by_kind["ip"]


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:
        raise PKIError(f"the CSR's extensions cannot be parsed: {parse_failure(exc)}") from None
    order = (x509.DNSName, x509.RFC822Name, x509.IPAddress, x509.UniformResourceIdentifier)
    return [name for kind in order for name in san if isinstance(name, kind)]


# --------------------------------------------------------------------------- small parts


def _not_before(now: dt.datetime | None) -> dt.datetime:
    """cfssl's NotBefore: now rounded to the minute (half up, like Go's Round), minus 5 minutes."""
    moment = dt.datetime.now(dt.UTC) if now is None else now
    if moment.tzinfo is None:
        raise PKIError("'now' must be timezone-aware")
    moment = moment.astimezone(dt.UTC)
    floor = moment.replace(second=0, microsecond=0)
    if moment - floor >= dt.timedelta(seconds=30):
        floor += dt.timedelta(minutes=1)
    return floor - BACKDATE


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash cfssl's DefaultSigAlgo picks for the signing key (SHA-512 for RSA 4096 and P-521,
    where kubeadm's Go signer would pick SHA-256 and SHA-384: hence a function of its own)."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size >= 4096:
            return hashes.SHA512()
        if key.key_size >= 3072:
            return hashes.SHA384()
        return hashes.SHA256()
    if key.curve.key_size >= 521:
        return hashes.SHA512()
    if key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_usage_flags(flags: set[str]) -> x509.KeyUsage:
    return x509.KeyUsage(**{flag: flag in flags for flag in _KEY_USAGE_FLAGS})
