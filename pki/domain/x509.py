"""Keys, certificate authorities, signing, PEM and parsing for the cluster PKI.

Pure ``cryptography`` code, free of Django, so that it can be tested and timed on its own. The
certificates it produces follow kubeadm's templates (see docs/kubeadm.md section 1): subject with CN
and O only, key usage digitalSignature + keyEncipherment (+ keyCertSign for CAs), basic constraints,
random serial in [1, 2^63) and a NotBefore backdated by five minutes. Extensions are emitted in the
order and with the criticality Go's ``crypto/x509`` uses, because that is what kubeadm's files hold.

``check_host`` reproduces Go's ``Certificate.VerifyHostname`` and the text of ``HostnameError`` so
that the panel can predict, word for word, the error kubectl or the kubelet will print.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clusterpanel.errors import InputError

KEY_ALGORITHMS = ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384")
DEFAULT_KEY_ALGORITHM = "RSA-2048"

# kubeadm backdates NotBefore so that small clock differences between nodes do not make a
# freshly issued certificate "not yet valid" (kubeadmconstants.CertificateBackdate). NotAfter is
# counted from the moment of issue, not from the backdated NotBefore (certs.KubeadmCert.GetConfig:
# NotBefore = start - backdate, NotAfter = start + validity): a one-year certificate lasts a year.
CERTIFICATE_BACKDATE = dt.timedelta(minutes=5)
DEFAULT_VALIDITY = dt.timedelta(days=365)
DEFAULT_CA_VALIDITY = dt.timedelta(days=3650)
MIN_RSA_BITS = 2048
# Serial numbers are uniform in [1, 2^63), like kubeadm's pkiutil.NewSignedCert.
MAX_SERIAL = 2**63

USAGE_SERVER = "server"
USAGE_CLIENT = "client"
_EKU = {
    USAGE_SERVER: ExtendedKeyUsageOID.SERVER_AUTH,
    USAGE_CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH,
}
# Go writes serverAuth before clientAuth when a template lists both, as kubeadm's etcd certs do.
_USAGE_ORDER = (USAGE_SERVER, USAGE_CLIENT)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class PKIError(InputError):
    """Raised for every invalid input: bad PEM, wrong key, weak key, impossible validity."""


# cryptography's parse errors, as words an operator acts on. Its own texts name Rust types,
# ASN.1 tags and a FAQ URL; none of them is ever shown.
_PARSE_REASONS = (
    ("Incorrect password", "the password is wrong"),
    ("Bad decrypt", "the password is wrong"),
    ("Password was not given", "the key is encrypted: give its password"),
    ("Password was given but", "the key is not encrypted: leave the password empty"),
    ("InvalidData", "the base64 text between the BEGIN and END lines is damaged (a character "
     "is missing, extra or changed): copy the whole block again"),
    ("MalformedFraming", "the BEGIN and END lines do not match or are incomplete"),
    ("Unable to load PEM", "the PEM text cannot be decoded: copy the whole block again"),
    ("no BEGIN CERTIFICATE", "it is PEM, but not a certificate"),
    ("ShortData", "the data ends too early: the file is truncated or is not DER at all"),
    ("ExtraData", "there is more data after the end of the structure"),
    ("ParseError", "the data is not the DER structure it should be: it is corrupted or of "
     "another kind"),
    ("ASN.1 parsing error", "the data is not the DER structure it should be: it is corrupted "
     "or of another kind"),
    ("Could not deserialize", "it is of a format, encryption or key type that cannot be read"),
)  # fmt: skip


def parse_failure(exc: BaseException) -> str:
    """Why ``cryptography`` could not read some PEM or DER, as a sentence (never its text)."""
    if isinstance(exc, UnsupportedAlgorithm):
        return "it uses an algorithm that cannot be read here"
    text = str(exc)
    for marker, reason in _PARSE_REASONS:
        if marker in text:
            return reason
    return "the data cannot be read"


@dataclass(frozen=True)
class CertSpec:
    """What one certificate must contain; the unit of kubeadm's certificate plan.

    ``name`` is kubeadm's base name (``apiserver``, ``etcd/peer``, ``ca``) or a kubeconfig file
    name (``admin.conf``); ``node`` is set for files that differ per node.
    """

    name: str
    signer: str | None
    common_name: str
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()
    is_ca: bool = False
    node: str | None = None
    validity: dt.timedelta = field(default=DEFAULT_VALIDITY)

    @property
    def key(self) -> tuple[str, str | None]:
        """Identity of the file in a tree: base name plus node for per-node files."""
        return (self.name, self.node)


# --------------------------------------------------------------------------- keys


def generate_private_key(algorithm: str = DEFAULT_KEY_ALGORITHM) -> PrivateKey:
    """Generate a key for one of ``KEY_ALGORITHMS`` (kubeadm's ``encryptionAlgorithm``)."""
    if algorithm == "ECDSA-P256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ECDSA-P384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm in ("RSA-2048", "RSA-3072", "RSA-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    raise PKIError(
        f"unknown key algorithm {algorithm!r}; expected one of {', '.join(KEY_ALGORITHMS)}"
    )


def key_algorithm_of(key: PrivateKey | PublicKey) -> str:
    """Name in ``KEY_ALGORITHMS`` terms of an existing key (PKIError if it has no such name)."""
    public = _public(key)
    if isinstance(public, rsa.RSAPublicKey):
        name = f"RSA-{public.key_size}"
    elif isinstance(public, ec.EllipticCurvePublicKey):
        name = {"secp256r1": "ECDSA-P256", "secp384r1": "ECDSA-P384"}.get(public.curve.name, "")
    else:
        name = ""
    if name not in KEY_ALGORITHMS:
        raise PKIError(f"unsupported key: {key_description(public)}")
    return name


def key_description(public_key: PrivateKey | PublicKey) -> str:
    """Short human form such as ``RSA 2048`` or ``ECDSA P-256``."""
    public = _public(public_key)
    if isinstance(public, rsa.RSAPublicKey):
        return f"RSA {public.key_size}"
    if isinstance(public, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {curves.get(public.curve.name, public.curve.name)}"
    return type(public).__name__


def _public(key: PrivateKey | PublicKey) -> PublicKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key.public_key()
    return key


def _check_key_strength(key: PrivateKey | PublicKey, what: str) -> None:
    public = _public(key)
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise PKIError(
                f"{what} is RSA {public.key_size}; RSA keys must have at least {MIN_RSA_BITS} bits"
            )
        return
    if isinstance(public, ec.EllipticCurvePublicKey):
        if public.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise PKIError(f"{what} uses curve {public.curve.name}; use P-256 or P-384")
        return
    raise PKIError(f"{what} is a {type(public).__name__}; only RSA and ECDSA keys are supported")


# --------------------------------------------------------------------------- issuing


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        now = dt.datetime.now(dt.UTC)
    elif now.tzinfo is None:
        raise PKIError("'now' must be timezone-aware")
    # Certificates hold whole seconds; comparing against a CA's NotAfter needs the same precision.
    return now.astimezone(dt.UTC).replace(microsecond=0)


def _subject(spec: CertSpec) -> x509.Name:
    if not spec.common_name:
        raise PKIError(f"{spec.name}: a certificate needs a common name")
    # Go's pkix.Name encodes O before CN, and all organizations in one multi-valued RDN.
    rdns = []
    if spec.organizations:
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in spec.organizations]
            )
        )
    rdns.append(
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)])
    )
    return x509.Name(rdns)


def _key_usage(is_ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_ca,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _parse_ip(value: str, spec_name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise PKIError(f"{spec_name}: {value!r} is not an IP address") from None


def _san(spec: CertSpec) -> x509.SubjectAlternativeName | None:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    names += [x509.IPAddress(_parse_ip(ip, spec.name)) for ip in spec.ip_addresses]
    return x509.SubjectAlternativeName(names) if names else None


def _signature_hash(signing_key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    # Go picks SHA-384 for P-384 keys and SHA-256 otherwise; kubeadm inherits that choice.
    # cfssl's DefaultSigAlgo differs for large RSA keys, so pki.domain.cfssl keeps its own.
    if isinstance(signing_key, ec.EllipticCurvePrivateKey) and signing_key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _ski(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def create_ca(spec: CertSpec, key: PrivateKey, now: dt.datetime | None = None) -> x509.Certificate:
    """Self-signed CA as kubeadm's ``NewSelfSignedCACert`` makes it (DNS SAN = its own CN)."""
    if spec.signer is not None or not spec.is_ca:
        raise PKIError(f"{spec.name}: create_ca needs a self-signed CA spec (signer None, is_ca)")
    _check_key_strength(key, f"{spec.name} key")
    _check_validity(spec)
    issued_at = _now(now)
    subject = _subject(spec)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(issued_at - CERTIFICATE_BACKDATE)
        .not_valid_after(issued_at + spec.validity)
        .add_extension(_key_usage(is_ca=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Go's CreateCertificate derives a SubjectKeyId for every CA; a self-signed one gets no
        # AuthorityKeyId because its issuer equals its subject.
        .add_extension(_ski(key.public_key()), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(spec.common_name)]), critical=False
        )
    )
    return builder.sign(key, _signature_hash(key))


def sign_certificate(
    spec: CertSpec,
    public_key: PublicKey,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Leaf certificate signed by ``ca_cert``; refuses one that would outlive its CA."""
    if spec.is_ca:
        raise PKIError(f"{spec.name}: sign_certificate issues leaves; use create_ca for a CA")
    if not spec.usages:
        raise PKIError(f"{spec.name}: a certificate needs at least one usage (server or client)")
    unknown = set(spec.usages) - set(_EKU)
    if unknown:
        raise PKIError(f"{spec.name}: unknown usage(s) {sorted(unknown)}; use 'server' or 'client'")
    _check_key_strength(public_key, f"{spec.name} key")
    _check_key_strength(ca_key, "CA key")
    if not key_matches_certificate(ca_key, ca_cert):
        raise PKIError(f"{spec.name}: the CA key does not belong to the CA certificate")
    _check_ca_certificate(ca_cert)
    _check_validity(spec)
    issued_at = _now(now)
    start = issued_at - CERTIFICATE_BACKDATE
    end = issued_at + spec.validity
    ca_end = ca_cert.not_valid_after_utc
    if issued_at > ca_end:
        raise PKIError(
            f"{spec.name}: the CA {ca_cert_common_name(ca_cert)!r} has expired "
            f"({ca_end:%Y-%m-%d %H:%M} UTC)"
        )
    if end > ca_end:
        raise PKIError(
            f"{spec.name}: the certificate would expire on {end:%Y-%m-%d %H:%M} UTC, after its CA "
            f"{ca_cert_common_name(ca_cert)!r} ({ca_end:%Y-%m-%d %H:%M} UTC); renew the CA first "
            "or shorten the validity"
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(spec))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(_key_usage(is_ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([_EKU[u] for u in _USAGE_ORDER if u in spec.usages]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_aki(ca_cert), critical=False)
    )
    san = _san(spec)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, _signature_hash(ca_key))


def _aki(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # Go copies the parent's SubjectKeyId; fall back to deriving it for a CA that lacks one.
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = _ski(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier(ski.digest, None, None)


def _check_validity(spec: CertSpec) -> None:
    if spec.validity <= dt.timedelta(0):
        raise PKIError(f"{spec.name}: validity must be positive, got {spec.validity}")


def _check_ca_certificate(ca_cert: x509.Certificate) -> None:
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PKIError(f"{ca_cert_common_name(ca_cert)!r} is not a CA certificate")


def ca_cert_common_name(cert: x509.Certificate) -> str:
    """The certificate's CN, or an empty string."""
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def subject_identity(name: x509.Name) -> tuple[str, tuple[str, ...]]:
    """The user (CN) and groups (each O) the API server reads from a client certificate's
    subject. Go's ``pkix.Name`` keeps the last CN when there are several, and so does this."""
    common_names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (
        str(common_names[-1].value) if common_names else "",
        tuple(str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)),
    )


def random_serial(limit: int = MAX_SERIAL) -> int:
    """A random positive serial below ``limit`` (kubeadm's: below 2^63; cfssl passes 2^159)."""
    return secrets.randbelow(limit - 1) + 1


# --------------------------------------------------------------------------- PEM


def certificate_to_pem(cert: x509.Certificate) -> bytes:
    """``CERTIFICATE`` PEM block."""
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_to_pem(key: PrivateKey) -> bytes:
    """Unencrypted key as kubeadm writes it: PKCS#1 for RSA, SEC1 for EC."""
    fmt = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def public_key_to_pem(key: PrivateKey | PublicKey) -> bytes:
    """PKIX ``PUBLIC KEY`` PEM block, the format of ``sa.pub``."""
    return _public(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse the first certificate of a PEM file, or a DER certificate."""
    if not isinstance(data, bytes | bytearray):
        raise PKIError("certificate data must be bytes")
    try:
        if b"-----BEGIN" in data:
            if b"-----BEGIN CERTIFICATE-----" not in data:
                raise PKIError("no 'CERTIFICATE' PEM block found")
            return x509.load_pem_x509_certificate(bytes(data))
        return x509.load_der_x509_certificate(bytes(data))
    except PKIError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PKIError(
            f"not a valid X.509 certificate (PEM or DER): {parse_failure(exc)}"
        ) from None


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order."""
    try:
        certs = x509.load_pem_x509_certificates(bytes(data))
    except ValueError as exc:
        raise PKIError(f"not a valid PEM certificate bundle: {parse_failure(exc)}") from None
    return certs


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """Parse an RSA or ECDSA private key (PKCS#1, SEC1 or PKCS#8 PEM, or DER)."""
    if not isinstance(data, bytes | bytearray):
        raise PKIError("key data must be bytes")
    loader = (
        serialization.load_pem_private_key
        if b"-----BEGIN" in data
        else serialization.load_der_private_key
    )
    try:
        key = loader(bytes(data), password=password)
    except TypeError as exc:
        # cryptography uses TypeError for a missing or superfluous password.
        raise PKIError(f"cannot load private key: {parse_failure(exc)}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = " (wrong password?)" if password else ""
        raise PKIError(f"not a valid private key{hint}: {parse_failure(exc)}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise PKIError(f"unsupported private key type {type(key).__name__}; use RSA or ECDSA")
    return key


def load_public_key(data: bytes) -> PublicKey:
    """Parse a PKIX ``PUBLIC KEY`` PEM (such as ``sa.pub``)."""
    try:
        key = serialization.load_pem_public_key(bytes(data))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PKIError(f"not a valid PEM public key: {parse_failure(exc)}") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise PKIError(f"unsupported public key type {type(key).__name__}")
    return key


def _spki_der(key: PrivateKey | PublicKey) -> bytes:
    return _public(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_matches_certificate(key: PrivateKey | PublicKey, cert: x509.Certificate) -> bool:
    """True when ``key`` (private or public) is the key pair of ``cert``."""
    try:
        cert_spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, UnsupportedAlgorithm):
        return False
    return _spki_der(key) == cert_spki


def require_key_matches(key: PrivateKey, cert: x509.Certificate, what: str = "key") -> None:
    """PKIError unless ``key`` belongs to ``cert``."""
    if not key_matches_certificate(key, cert):
        raise PKIError(
            f"{what} ({key_description(key)}) does not match the certificate "
            f"{ca_cert_common_name(cert)!r} ({key_description(cert.public_key())})"  # type: ignore[arg-type]
        )


def verify_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True when ``ca_cert``'s subject is ``cert``'s issuer and its key verifies the signature."""
    if cert.issuer != ca_cert.subject:
        return False
    public = ca_cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,  # type: ignore[arg-type]
            )
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
            )
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


# --------------------------------------------------------------------------- digests


def spki_sha256(cert: x509.Certificate) -> str:
    """kubeadm's discovery hash: ``sha256:`` + hex SHA-256 of the DER SubjectPublicKeyInfo."""
    return "sha256:" + hashlib.sha256(_spki_der(cert.public_key())).hexdigest()  # type: ignore[arg-type]


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the whole certificate, upper-case hex pairs joined by colons like openssl."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


# --------------------------------------------------------------------------- host checks


@dataclass(frozen=True)
class HostCheck:
    """Outcome of ``check_host``: whether Go would accept the name, and its exact error text."""

    covered: bool
    message: str
    san_to_add: str | None


def cert_dns_names(cert: x509.Certificate) -> list[str]:
    """DNS SANs in certificate order."""
    return _san_values(cert, x509.DNSName)


def cert_ip_addresses(cert: x509.Certificate) -> list[str]:
    """IP SANs in certificate order, printed as Go's ``net.IP.String`` prints them."""
    return [_go_ip_string(ip) for ip in _san_values(cert, x509.IPAddress)]


def _san_values(cert: x509.Certificate, kind: type) -> list:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(kind))


def _has_san_extension(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return True


def _go_ip_string(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    # Go prints an IPv4-mapped IPv6 address in dotted form; otherwise RFC 5952 like Python.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _go_parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # net.ParseIP takes no zones and no surrounding brackets; ipaddress agrees on the rest.
    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _valid_hostname(host: str, is_pattern: bool) -> bool:
    if not is_pattern:
        host = host.removesuffix(".")
    if not host:
        return False
    for i, part in enumerate(host.split(".")):
        if not part:
            return False
        if is_pattern and i == 0 and part == "*":
            continue
        for j, c in enumerate(part):
            ok = "a" <= c <= "z" or "0" <= c <= "9" or "A" <= c <= "Z" or c == "_"
            if not ok and not (c == "-" and j != 0):
                return False
    return True


def _match_exactly(a: str, b: str) -> bool:
    if a in ("", ".") or b in ("", "."):
        return False
    return _ascii_lower(a) == _ascii_lower(b)


def _match_hostnames(pattern: str, host: str) -> bool:
    pattern = _ascii_lower(pattern)
    host = _ascii_lower(host.removesuffix("."))
    if not pattern or not host:
        return False
    pattern_parts = pattern.split(".")
    host_parts = host.split(".")
    if len(pattern_parts) != len(host_parts):
        return False
    return all(
        (i == 0 and p == "*") or p == h
        for i, (p, h) in enumerate(zip(pattern_parts, host_parts, strict=True))
    )


def _hostname_error(cert: x509.Certificate, host: str) -> str:
    """Text of Go's ``x509.HostnameError.Error()``."""
    if not _has_san_extension(cert) and _match_hostnames(ca_cert_common_name(cert), host):
        return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if _go_parse_ip(host) is not None:
        ips = cert_ip_addresses(cert)
        if not ips:
            return (
                f"x509: cannot validate certificate for {host} "
                "because it doesn't contain any IP SANs"
            )
        valid = ", ".join(ips)
    else:
        valid = ", ".join(cert_dns_names(cert))
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


def check_host(cert: x509.Certificate, host: str) -> HostCheck:
    """Would a Go client (kubectl, kubelet, kubeadm) accept ``cert`` for ``host``?

    Replicates ``Certificate.VerifyHostname``: an IP (optionally in brackets) only matches IP
    SANs; a name matches DNS SANs case-insensitively, with a left-most ``*`` label wildcard and a
    trailing dot only when both sides are valid hostnames. The common name is never used.
    """
    candidate_ip = host
    if len(host) >= 3 and host[0] == "[" and host[-1] == "]":
        candidate_ip = host[1:-1]
    ip = _go_parse_ip(candidate_ip)
    if ip is not None:
        for san in _san_values(cert, x509.IPAddress):
            if _go_parse_ip(str(san)) == ip:
                return HostCheck(True, f"certificate is valid for {candidate_ip}", None)
        return HostCheck(False, _hostname_error(cert, candidate_ip), _go_ip_string(ip))

    candidate = _ascii_lower(host)
    valid_candidate = _valid_hostname(candidate, is_pattern=False)
    for pattern in cert_dns_names(cert):
        if valid_candidate and _valid_hostname(pattern, is_pattern=True):
            matched = _match_hostnames(pattern, candidate)
        else:
            matched = _match_exactly(pattern, candidate)
        if matched:
            return HostCheck(True, f"certificate is valid for {host}", None)
    return HostCheck(False, _hostname_error(cert, host), candidate.removesuffix(".") or None)
