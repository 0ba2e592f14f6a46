"""Files sealed with ``crypto.seal_bytes`` that key rotation must re-seal too.

``rotate_encryption_keys`` re-encrypts the database's encrypted fields itself; files an app keeps
sealed on disk (etcd snapshots under the data directory) are the app's to find. An app registers
a function from its ``AppConfig.ready``; the command calls each with the key ring and whether it
is a dry run, and reports the count of files each re-sealed (or would).
"""

from __future__ import annotations

from collections.abc import Callable

from clusterpanel.security.crypto import BLOB_MAGIC, KeyRing

Reseal = Callable[[KeyRing, bool], int]

_STORES: dict[str, Reseal] = {}


def register(label: str, reseal: Reseal) -> None:
    _STORES[label] = reseal


def stores() -> list[tuple[str, Reseal]]:
    return sorted(_STORES.items())


def sealed_key_id(blob: bytes) -> str:
    """The id of the key ``blob`` was sealed with ("" when it is not a sealed blob)."""
    if not blob.startswith(BLOB_MAGIC):
        return ""
    return blob[len(BLOB_MAGIC) : len(BLOB_MAGIC) + 8].decode("ascii", "replace")
