"""The credential rule the node form and the API share."""

from __future__ import annotations

import pytest

from nodes.rules.credentials import CredentialError, credential_changes

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"


def test_a_key_replaces_a_password_and_keeps_its_passphrase() -> None:
    assert credential_changes(f"  {KEY}\n\n", "secret") == {
        "ssh_private_key": KEY + "\n",
        "ssh_key_passphrase": "secret",
        "ssh_password": "",
    }


def test_a_password_replaces_a_key() -> None:
    assert credential_changes(password="pw") == {
        "ssh_password": "pw",
        "ssh_private_key": "",
        "ssh_key_passphrase": "",
    }


def test_blank_keeps_the_stored_credential_and_a_passphrase_alone_is_a_new_passphrase() -> None:
    assert credential_changes() == {}
    assert credential_changes(passphrase="new") == {"ssh_key_passphrase": "new"}


def test_clear_removes_the_stored_credential() -> None:
    assert credential_changes(clear=True) == dict.fromkeys(
        ("ssh_private_key", "ssh_key_passphrase", "ssh_password"), ""
    )


def test_a_key_and_a_password_together_are_refused_on_the_password() -> None:
    with pytest.raises(CredentialError) as caught:
        credential_changes(KEY, "", "pw")
    assert caught.value.field == "ssh_password"
