"""Certificates for the rendered-file tests of binary installs: one CA signs every leaf (the
renderers only embed or name them; which CA signs what is the certificate plan's business)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pki.domain.binary_layout import CA_FILES, CERTS, SERVICE_ACCOUNT
from pki.domain.x509 import (
    DEFAULT_CA_VALIDITY,
    USAGE_CLIENT,
    CertSpec,
    certificate_to_pem,
    create_ca,
    generate_private_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_certificate,
)


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


@cache
def pems() -> dict[str, Pem]:
    """Every file base of the layout (CAs, the service-account pair, each ``CERTS`` entry)."""
    ca_key = generate_private_key("ECDSA-P256")
    # A CA outlives its leaves, as kubeadm's: with a leaf's validity the leaves signed a second
    # later (certificates hold whole seconds) would outlive it and be refused.
    ca_spec = CertSpec("ca", None, "kubernetes", is_ca=True, validity=DEFAULT_CA_VALIDITY)
    ca = create_ca(ca_spec, ca_key)
    ca_pem = Pem(certificate_to_pem(ca), private_key_to_pem(ca_key))
    found = {base: ca_pem for base in CA_FILES.values()}
    sa_key = generate_private_key("ECDSA-P256")
    found[SERVICE_ACCOUNT] = Pem(public_key_to_pem(sa_key.public_key()), private_key_to_pem(sa_key))
    for cert in CERTS:
        key = generate_private_key("ECDSA-P256")
        spec = CertSpec(cert.name, "ca", cert.name, usages=(USAGE_CLIENT,))
        leaf = sign_certificate(spec, key.public_key(), ca, ca_key)
        found[cert.name] = Pem(certificate_to_pem(leaf), private_key_to_pem(key))
    return found
