"""Check SSH private keys before they are stored (pure, no Django).

A key is checked once, when the operator uploads it: a malformed key or a wrong
passphrase is an input error then, not a failed job an hour later. The key text
itself is never put into a message or a log line.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from clusterpanel.errors import InputError

SUPPORTED = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
CREDENTIAL_FIELDS = ("ssh_private_key", "ssh_key_passphrase", "ssh_password")


class CredentialError(InputError):
    """The key cannot be used; ``field`` says which input is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field)


def check_private_key(key_text: str, passphrase: str = "") -> str:
    """Return a short description (``ssh-ed25519``, ``RSA 4096``…) of a usable key."""
    data = key_text.strip().encode() + b"\n"
    password = passphrase.encode() if passphrase else None
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise CredentialError(
            "ssh_private_key", "not a private key: expected a PEM or OpenSSH 'PRIVATE KEY' block"
        )
    loader = (
        serialization.load_ssh_private_key
        if b"BEGIN OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=password)
    except TypeError as exc:
        # cryptography raises TypeError for "password given but key not encrypted"
        # and for "key is encrypted but no password given".
        if password is None:
            raise CredentialError(
                "ssh_key_passphrase", "the private key is encrypted: give its passphrase"
            ) from None
        raise CredentialError(
            "ssh_key_passphrase", "a passphrase was given but the key is not encrypted"
        ) from exc
    except ValueError:
        if password is not None:
            raise CredentialError(
                "ssh_key_passphrase", "wrong passphrase, or the private key is damaged"
            ) from None
        raise CredentialError("ssh_private_key", "the private key is malformed") from None
    except Exception:
        raise CredentialError("ssh_private_key", "the private key is malformed") from None
    if not isinstance(key, SUPPORTED):
        raise CredentialError("ssh_private_key", "unsupported key type: use RSA, ECDSA or Ed25519")
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise CredentialError("ssh_private_key", "RSA keys must have at least 2048 bits")
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"ECDSA {key.curve.name}"
    return "ssh-ed25519"


def credential_changes(
    private_key: str = "", passphrase: str = "", password: str = "", *, clear: bool = False
) -> dict[str, str]:
    """The credential fields to write for what an operator sent; the rule of the form and the API.

    A node authenticates with a private key (and its passphrase) or with a password, never both:
    sending both is refused. Blank inputs keep the stored credential; a passphrase alone is a new
    passphrase for the stored key; ``clear`` removes the stored credential first. The key itself
    is checked by ``check_private_key`` when the node is validated.
    """
    key = private_key.strip()
    if key and password:
        raise CredentialError("ssh_password", "give a private key or a password, not both")
    changes = dict.fromkeys(CREDENTIAL_FIELDS, "") if clear else {}
    if key:
        changes.update(ssh_private_key=key + "\n", ssh_key_passphrase=passphrase, ssh_password="")
    elif passphrase:
        changes["ssh_key_passphrase"] = passphrase
    if password:
        changes.update(ssh_password=password, ssh_private_key="", ssh_key_passphrase="")
    return changes


# The bastion's fields for each of the node credential's (``Cluster`` in nodes.models).
BASTION_FIELDS = {
    "ssh_private_key": "bastion_private_key",
    "ssh_key_passphrase": "bastion_key_passphrase",
    "ssh_password": "bastion_password",
}


def bastion_credential_changes(
    private_key: str = "", passphrase: str = "", password: str = "", *, clear: bool = False
) -> dict[str, str]:
    """``credential_changes`` for a cluster's bastion, under the bastion's field names."""
    try:
        changes = credential_changes(private_key, passphrase, password, clear=clear)
    except CredentialError as error:
        raise CredentialError(BASTION_FIELDS[error.field], str(error)) from None
    return {BASTION_FIELDS[name]: value for name, value in changes.items()}
