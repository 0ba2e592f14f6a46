"""``kubeadm join`` command lines exactly as kubeadm prints them, and certificate keys.

kubeadm renders the command from one template (cmd/kubeadm/app/cmd/util/join.go)::

    kubeadm join {endpoint} --token {token} \\
    <TAB>{for each hash: "--discovery-token-ca-cert-hash {hash} "}{if control plane: \\
    <TAB>--control-plane {if key: --certificate-key {key}}}

``kubeadm init`` prints that text as is; ``kubeadm token create --print-join-command`` removes
every backslash-newline and every tab, which leaves it on one line. The trailing space after the
last hash (and after ``--control-plane`` without a key) is part of kubeadm's output and kept.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Sequence

from clusterpanel.errors import InputError
from pki.domain.names import is_dns1123_subdomain
from pki.domain.tokens import BootstrapToken, TokenError, parse_token

DEFAULT_API_PORT = 6443
CERTIFICATE_KEY_BYTES = 32

_HASH_RE = re.compile(r"sha256:[0-9a-fA-F]{64}")
_CERTIFICATE_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")


class JoinError(InputError):
    """An invalid value for a join command; the message names the offending field."""


def generate_certificate_key() -> str:
    """Return a new AES-256 key as 64 lowercase hex characters (kubeadm's certificate key)."""
    return secrets.token_hex(CERTIFICATE_KEY_BYTES)


def validate_certificate_key(key: str) -> str:
    """Return the key in lowercase if it is 32 bytes of hex, else raise :class:`JoinError`."""
    if not isinstance(key, str) or _CERTIFICATE_KEY_RE.fullmatch(key) is None:
        # The value is secret: say what is wrong without printing it.
        raise JoinError("certificate key: must be 64 hex characters (32 bytes)")
    return key.lower()


def validate_ca_cert_hash(value: str) -> str:
    """Return a discovery hash ``sha256:<64 hex>`` in lowercase, else raise."""
    if not isinstance(value, str) or _HASH_RE.fullmatch(value) is None:
        raise JoinError(f"discovery-token-ca-cert-hash: {value!r} must be sha256:<64 hex>")
    return value.lower()


def _parse_port(text: str, original: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise JoinError(f"endpoint: {original!r} has an invalid port")
    return int(text)


def _split_endpoint(text: str, original: str) -> tuple[str, str | None]:
    """Split host and optional port; IPv6 hosts may be bracketed or bare (then no port)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise JoinError(f"endpoint: {original!r} has an unbalanced IPv6 bracket")
        return host, (rest[1:] if rest else None)
    if text.count(":") > 1:
        return text, None  # a bare IPv6 address cannot carry a port
    host, colon, port = text.partition(":")
    return host, (port if colon else None)


def _normalise_host(host: str, original: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        lowered = host.lower().rstrip(".")
        # An all-digit last label is a mistyped IP address (10.0.0.300), not a host name.
        numeric_tld = lowered.rsplit(".", 1)[-1].isdigit()
        if not is_dns1123_subdomain(lowered) or numeric_tld:
            raise JoinError(f"endpoint: {original!r} is not an IP address or DNS name") from None
        return lowered
    return f"[{address}]" if address.version == 6 else str(address)


def normalize_endpoint(endpoint: str, default_port: int = DEFAULT_API_PORT) -> str:
    """Return ``host:port`` with IPv6 in brackets; a missing port becomes ``default_port``.

    An ``https://`` prefix (as in a kubeconfig ``server``) is accepted and dropped.
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise JoinError("endpoint: must not be empty")
    text = endpoint.strip().removeprefix("https://").rstrip("/")
    host, port = _split_endpoint(text, endpoint)
    port_number = default_port if port is None else _parse_port(port, endpoint)
    return f"{_normalise_host(host, endpoint)}:{port_number}"


def _coerce_token(token: BootstrapToken | str) -> BootstrapToken:
    if isinstance(token, BootstrapToken):
        return token
    try:
        return parse_token(token)
    except TokenError as error:
        raise JoinError(str(error)) from None


def format_join_command(
    endpoint: str,
    token: BootstrapToken | str,
    ca_cert_hashes: Sequence[str],
    control_plane: bool = False,
    certificate_key: str | None = None,
    one_line: bool = False,
) -> str:
    """Return the join command as kubeadm prints it (without the final newline).

    ``one_line=False`` gives ``kubeadm init``'s multi-line form, ``one_line=True`` the form of
    ``kubeadm token create --print-join-command``.
    """
    host_port = normalize_endpoint(endpoint)
    parsed = _coerce_token(token)
    if isinstance(ca_cert_hashes, str) or not ca_cert_hashes:
        raise JoinError("discovery-token-ca-cert-hash: give at least one CA hash as a list")
    hashes = [validate_ca_cert_hash(value) for value in ca_cert_hashes]
    if certificate_key is not None and not control_plane:
        raise JoinError("certificate key: only a control-plane join takes a certificate key")
    key = None if certificate_key is None else validate_certificate_key(certificate_key)

    text = f"kubeadm join {host_port} --token {parsed} \\\n\t"
    text += "".join(f"--discovery-token-ca-cert-hash {value} " for value in hashes)
    if control_plane:
        text += "\\\n\t--control-plane "
        if key is not None:
            text += f"--certificate-key {key}"
    if one_line:
        text = text.replace("\\\n", "").replace("\t", "")
    return text
