"""Encryption of secrets at rest (private keys, SSH credentials, token secrets).

Each value is sealed with AES-256-GCM and stored as ``enc1:<key id>:<base64>``
where the base64 part is nonce(12) || ciphertext || tag. The key id is the first
8 hex digits of SHA-256 over the key, so a value says which key opened it and
keys can be rotated: the first configured key encrypts, every key decrypts, and
``manage.py rotate_encryption_keys`` re-seals everything under the first key.

Keys never derive from SECRET_KEY. They come from ``CLUSTERPANEL_ENCRYPTION_KEYS``
(or ``..._FILE``): comma-separated urlsafe-base64 32-byte keys. On the embedded
default ``manage.py bootstrap_data_dir`` generates a key file in the data directory
(mode 0600) at installation; a missing key file is an error, never a new key.

Decryption never fails quietly: an unknown key id, a tampered value or a value
that is not ciphertext raises ``DecryptionError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from clusterpanel.datadir import read_secret_file
from clusterpanel.env import env_secret

PREFIX = "enc1"
_NONCE_BYTES = 12
# Binds every ciphertext to this product and format version.
_AAD = b"clusterpanel/enc1"
BLOB_MAGIC = b"CPB1"
_BLOB_AAD = b"clusterpanel/blob1:"


class DecryptionError(Exception):
    """A stored secret could not be decrypted (wrong or missing key, or tampering)."""


@dataclass(frozen=True)
class KeyRing:
    """The configured keys: ``primary`` encrypts, all of ``keys`` decrypt."""

    primary: str
    keys: dict[str, bytes]

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.primary]).encrypt(nonce, plaintext.encode(), _AAD)
        body = base64.b64encode(nonce + sealed).decode()
        return f"{PREFIX}:{self.primary}:{body}"

    def decrypt(self, stored: str) -> str:
        prefix, _, rest = stored.partition(":")
        key_id, _, body = rest.partition(":")
        if prefix != PREFIX or not key_id or not body:
            raise DecryptionError("value is not an encrypted secret")
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionError(f"no configured encryption key has id {key_id}")
        try:
            raw = base64.b64decode(body, validate=True)
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD)
        except (binascii.Error, InvalidTag, ValueError):
            raise DecryptionError(f"secret sealed with key {key_id} failed to decrypt") from None
        return plain.decode()

    def seal_bytes(self, data: bytes, context: bytes) -> bytes:
        """Binary data (a file's content) sealed like a text secret: ``BLOB_MAGIC``, the key id
        (8 ASCII hex digits), nonce(12), ciphertext and tag. ``context`` (what the blob is, such
        as its row's id) is authenticated too: a blob moved to another row does not open."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.keys[self.primary]).encrypt(nonce, data, _BLOB_AAD + context)
        return BLOB_MAGIC + self.primary.encode() + nonce + sealed

    def open_bytes(self, blob: bytes, context: bytes) -> bytes:
        head = len(BLOB_MAGIC)
        if not blob.startswith(BLOB_MAGIC) or len(blob) < head + 8 + _NONCE_BYTES + 16:
            raise DecryptionError("data is not an encrypted blob")
        key_id = blob[head : head + 8].decode("ascii", "replace")
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionError(f"no configured encryption key has id {key_id}")
        body = blob[head + 8 :]
        try:
            return AESGCM(key).decrypt(
                body[:_NONCE_BYTES], body[_NONCE_BYTES:], _BLOB_AAD + context
            )
        except (InvalidTag, ValueError):
            raise DecryptionError(f"blob sealed with key {key_id} failed to decrypt") from None

    def key_id_of(self, stored: str) -> str:
        return stored.split(":", 2)[1] if stored.startswith(PREFIX + ":") else ""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def new_key() -> str:
    """A fresh key in the configuration format (urlsafe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def parse_keys(text: str) -> KeyRing:
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for number, item in enumerate(text.replace("\n", ",").split(","), start=1):
        item = item.strip()
        if not item:
            continue
        try:
            raw = base64.urlsafe_b64decode(item)
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"encryption key {number} is not base64") from None
        if len(raw) != 32:
            raise ImproperlyConfigured(f"encryption key {number} must be 32 bytes, got {len(raw)}")
        kid = key_id(raw)
        keys[kid] = raw
        order.append(kid)
    if not order:
        raise ImproperlyConfigured("no encryption keys configured")
    return KeyRing(primary=order[0], keys=keys)


@lru_cache(maxsize=1)
def keyring() -> KeyRing:
    configured = env_secret("CLUSTERPANEL_ENCRYPTION_KEYS")
    if not configured:
        configured = read_secret_file(settings.ENCRYPTION_KEYS_FILE)
    return parse_keys(configured)


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext)


def decrypt(stored: str) -> str:
    return keyring().decrypt(stored)


def seal_bytes(data: bytes, context: bytes) -> bytes:
    return keyring().seal_bytes(data, context)


def open_bytes(blob: bytes, context: bytes) -> bytes:
    return keyring().open_bytes(blob, context)
