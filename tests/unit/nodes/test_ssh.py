"""nodes.ssh without a host: fingerprints, key loading, host-key decisions, secrets kept out."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import paramiko
import pytest

from nodes import ssh

SECRETS = ("key-material-XYZ", "passphrase-XYZ", "password-XYZ", "sudo-XYZ")


def _keygen(tmp_path: Path, key_type: str, *extra: str, passphrase: str = "") -> tuple[str, str]:
    path = tmp_path / key_type
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, *extra, "-f", str(path)], check=True
    )
    return path.read_text(), (tmp_path / f"{key_type}.pub").read_text()


def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path: Path) -> None:
    _, public = _keygen(tmp_path, "ed25519")
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "ed25519.pub")], capture_output=True, text=True
    )

    assert ssh.fingerprint(base64.b64decode(public.split()[1])) == keygen.stdout.split()[1]


@pytest.mark.parametrize(
    ("key_type", "extra", "expected"),
    [
        ("rsa", ("-b", "2048", "-m", "PEM"), paramiko.RSAKey),
        ("rsa", ("-b", "2048"), paramiko.RSAKey),
        ("ecdsa", ("-b", "256", "-m", "PEM"), paramiko.ECDSAKey),
        ("ed25519", (), paramiko.Ed25519Key),
    ],
)
def test_it_loads_rsa_ecdsa_and_ed25519_keys_with_a_passphrase(
    tmp_path: Path, key_type: str, extra: tuple[str, ...], expected: type
) -> None:
    private, public = _keygen(tmp_path, key_type, *extra, passphrase="open sesame")
    key = ssh._private_key(ssh.Credential("root", private, passphrase="open sesame"), "node-1")
    assert isinstance(key, expected)
    assert key.get_base64() == public.split()[1]


def test_a_wrong_passphrase_or_a_damaged_key_says_so_without_the_key(tmp_path: Path) -> None:
    private, _ = _keygen(tmp_path, "ed25519", passphrase="right")
    with pytest.raises(ssh.SSHError, match="wrong passphrase") as wrong:
        ssh._private_key(ssh.Credential("root", private, passphrase="passphrase-XYZ"), "n")
    assert "passphrase-XYZ" not in str(wrong.value) and wrong.value.__cause__ is None
    damaged = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nkey-material-XYZ\n-----END OPENSSH PRIVATE KEY-----"
    )
    with pytest.raises(ssh.SSHError) as bad:
        ssh._private_key(ssh.Credential("root", damaged), "n")
    assert "key-material-XYZ" not in str(bad.value)


def _target(host_key: ssh.HostKey | None, tofu: bool = False) -> ssh.Target:
    return ssh.Target("node-1", "127.0.0.1", 22, ssh.Credential("root"), host_key, tofu)


PRESENTED = ssh.HostKey("ssh-ed25519", "AAAA", "SHA256:" + "a" * 43)
OTHER = ssh.HostKey("ssh-ed25519", "BBBB", "SHA256:" + "b" * 43)


def test_the_pinned_key_passes_and_another_is_a_mismatch_naming_both() -> None:
    assert ssh._check_host_key(_target(PRESENTED), PRESENTED) is None
    with pytest.raises(ssh.HostKeyMismatch) as mismatch:
        ssh._check_host_key(_target(OTHER, tofu=True), PRESENTED)  # pinned wins over TOFU
    assert OTHER.fingerprint in str(mismatch.value) and PRESENTED.fingerprint in str(mismatch.value)


def test_no_pinned_key_is_refused_unless_trusted_on_first_use() -> None:
    with pytest.raises(ssh.HostKeyUnknown):
        ssh._check_host_key(_target(None), PRESENTED)
    assert ssh._check_host_key(_target(None, tofu=True), PRESENTED) == PRESENTED


def test_reprs_carry_no_secret() -> None:
    credential = ssh.Credential("ops", *SECRETS)
    target = ssh.Target("node-1", "10.0.0.1", 22, credential, None)
    text = (
        repr(credential)
        + repr(target)
        + repr(ssh.Target("n", "a", 22, credential, None, bastion=target))
    )
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("path", ["relative/file", "/etc/a\nb", "/etc/a\0b", "/etc/dir/", ""])
def test_upload_paths_must_be_absolute_files_on_one_line(path: str) -> None:
    with pytest.raises(ssh.SSHError):
        ssh._check_path(path)
