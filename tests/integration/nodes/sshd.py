"""A real OpenSSH sshd on loopback whose host key a test scans (key exchange only: nobody logs in).

Small on purpose: the host-key tests need a daemon presenting a known key, and one whose key
can be swapped, nothing more.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.services import free_port, wait_for


@dataclass
class Sshd:
    address: str
    port: int
    key_type: str
    key_base64: str
    fingerprint: str


def _keygen(path: Path) -> tuple[str, str, str]:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    key_type, key_base64 = path.with_suffix(".pub").read_text().split()[:2]
    listing = subprocess.run(
        ["ssh-keygen", "-lf", str(path.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return key_type, key_base64, listing.split()[1]


def _banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.3) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@contextmanager
def sshd(workdir: Path, address: str = "127.0.0.1") -> Iterator[Sshd]:
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    key = workdir / "host_key"
    key_type, key_base64, fingerprint = _keygen(key)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {address}:{port}\nHostKey {key}\nPidFile {workdir / 'sshd.pid'}\n"
        "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile none\nStrictModes no\n"
    )
    process = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(workdir / "sshd.log")]
    )
    try:
        wait_for(lambda: _banner(address, port), 10, f"sshd on {address}:{port}")
        yield Sshd(address, port, key_type, key_base64, fingerprint)
    finally:
        process.terminate()
        process.wait(timeout=10)
