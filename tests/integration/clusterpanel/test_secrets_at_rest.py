"""Secrets are encrypted in the database, fail loudly with a wrong key, and rotate."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from clusterpanel import datadir
from clusterpanel.security import crypto
from nodes.models import Cluster, Node
from tests.dbdump import database_dump
from tests.factories import make_cluster, make_node

PASSWORD = "hunter2-very-secret-password"


@pytest.fixture
def fresh_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    crypto.keyring.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    crypto.keyring.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_the_database_file_holds_no_credential_in_plain_text(
    ed25519_key: str, encrypted_rsa_key: tuple[str, str]
) -> None:
    cluster = make_cluster("vault", control_plane_endpoint="10.0.0.1")
    rsa_pem, passphrase = encrypted_rsa_key
    make_node(cluster, "worker", name="a", address="10.0.0.2", ssh_private_key=ed25519_key)
    make_node(
        cluster,
        "worker",
        name="b",
        address="10.0.0.3",
        ssh_private_key=rsa_pem,
        ssh_key_passphrase=passphrase,
    )
    make_node(cluster, "worker", name="c", address="10.0.0.4", ssh_password=PASSWORD)
    dump = database_dump()
    assert b"enc1:" in dump  # the ciphertexts are there
    for secret in (PASSWORD, passphrase, ed25519_key.splitlines()[1], rsa_pem.splitlines()[1]):
        assert secret.encode() not in dump
    assert b"PRIVATE KEY" not in dump
    # And they read back.
    assert Node.objects.get(name="c").ssh_password == PASSWORD


@pytest.mark.django_db
def test_a_wrong_key_raises_instead_of_returning_ciphertext(
    cluster: Cluster, fresh_keyring: pytest.MonkeyPatch
) -> None:
    make_node(cluster, "worker", name="n", address="10.0.0.9", ssh_password=PASSWORD)
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", crypto.new_key())
    crypto.keyring.cache_clear()
    with pytest.raises(crypto.DecryptionError, match="no configured encryption key"):
        Node.objects.get(name="n")


def test_tampering_is_detected(fresh_keyring: pytest.MonkeyPatch) -> None:
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", crypto.new_key())
    sealed = crypto.encrypt("secret")
    prefix, kid, body = sealed.split(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(crypto.DecryptionError, match="failed to decrypt"):
        crypto.decrypt(f"{prefix}:{kid}:{base64.b64encode(bytes(raw)).decode()}")
    with pytest.raises(crypto.DecryptionError, match="not an encrypted secret"):
        crypto.decrypt("plain text")


def test_the_embedded_key_file_comes_from_the_bootstrap_and_is_private(
    settings: Any, tmp_path: Path, fresh_keyring: pytest.MonkeyPatch
) -> None:
    fresh_keyring.delenv("CLUSTERPANEL_ENCRYPTION_KEYS", raising=False)
    fresh_keyring.delenv("CLUSTERPANEL_ENCRYPTION_KEYS_FILE", raising=False)
    fresh_keyring.setenv("CLUSTERPANEL_DATA_DIR", str(tmp_path))
    datadir.bootstrap()
    settings.ENCRYPTION_KEYS_FILE = tmp_path / "encryption.keys"
    assert settings.ENCRYPTION_KEYS_FILE.stat().st_mode & 0o777 == 0o600
    sealed = crypto.encrypt("secret")
    crypto.keyring.cache_clear()  # a restart reads the same file, so the value still opens
    assert crypto.decrypt(sealed) == "secret"


def test_a_missing_key_file_is_an_error_never_a_new_key(
    settings: Any, tmp_path: Path, fresh_keyring: pytest.MonkeyPatch
) -> None:
    fresh_keyring.delenv("CLUSTERPANEL_ENCRYPTION_KEYS", raising=False)
    fresh_keyring.delenv("CLUSTERPANEL_ENCRYPTION_KEYS_FILE", raising=False)
    settings.ENCRYPTION_KEYS_FILE = tmp_path / "encryption.keys"
    with pytest.raises(ImproperlyConfigured, match=r"manage\.py bootstrap_data_dir"):
        crypto.encrypt("secret")
    assert not settings.ENCRYPTION_KEYS_FILE.exists()


@pytest.mark.django_db
def test_rotation_reencrypts_every_row_under_the_new_key(
    cluster: Cluster, fresh_keyring: pytest.MonkeyPatch
) -> None:
    old, new = crypto.new_key(), crypto.new_key()
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", old)
    crypto.keyring.cache_clear()
    Node.objects.bulk_create(
        Node(cluster=cluster, name=f"n{i}", address=f"10.1.{i // 250}.{i % 250 + 1}",
             ssh_password=f"pw-{i}")
        for i in range(1000)
    )  # fmt: skip
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", f"{new},{old}")
    crypto.keyring.cache_clear()
    call_command("rotate_encryption_keys", stdout=open(os.devnull, "w"))  # noqa: SIM115
    new_id = crypto.key_id(base64.urlsafe_b64decode(new))
    with connection.cursor() as cursor:
        cursor.execute("SELECT ssh_password FROM nodes_node")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 1000
    assert all(value.startswith(f"enc1:{new_id}:") for value in stored)
    # The old key can now go: everything still reads back.
    fresh_keyring.setenv("CLUSTERPANEL_ENCRYPTION_KEYS", new)
    crypto.keyring.cache_clear()
    passwords = {node.name: node.ssh_password for node in Node.objects.all()}
    assert passwords == {f"n{i}": f"pw-{i}" for i in range(1000)}
