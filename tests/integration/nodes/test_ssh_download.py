"""``Session.download`` against real sshd test hosts: a root-only file read through sudo, the
size cap, and the refusals."""

from __future__ import annotations

import os
import secrets

import pytest

from nodes import ssh
from tests import hosts
from tests.hosts import TestHost

pytestmark = pytest.mark.no_database  # nodes.ssh is the engine's: no Django, no database


def test_a_root_only_file_is_read_through_sudo_byte_for_byte(test_hosts: list[TestHost]) -> None:
    host = test_hosts[0]
    data = os.urandom(3 << 20) + b"\0\n\r\xff"  # binary, larger than one channel window
    path = host.bind_dir("/etc/kubernetes") / f"download-{secrets.token_hex(4)}.bin"
    path.write_bytes(data)
    path.chmod(0o600)
    credential = ssh.Credential(
        user=hosts.PASSWORD_USER, password=hosts.OPS_PASSWORD, sudo_password=hosts.OPS_PASSWORD
    )
    try:
        with ssh.Session.open(host.target(credential)) as session:
            got = session.download(f"/etc/kubernetes/{path.name}", max_bytes=len(data))
            with pytest.raises(ssh.SSHError, match="larger than the limit of 1000 bytes"):
                session.download(f"/etc/kubernetes/{path.name}", max_bytes=1000)
            with pytest.raises(ssh.SSHError, match="failed"):
                session.download("/etc/kubernetes/no-such-file", max_bytes=10)
            with pytest.raises(ssh.SSHError, match="absolute"):
                session.download("relative/path", max_bytes=10)
    finally:
        path.unlink()
    assert got == data
    assert not any(hosts.OPS_PASSWORD in c for c in host.received_commands())
