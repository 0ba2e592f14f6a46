"""SSH to the nodes: the only module that imports paramiko.

Host keys are pinned: the key a host presents is compared with the node's pinned
fingerprint before any authentication, and a different key stops the connection.
Nothing here blocks forever: connect, banner, authentication and every command
have timeouts, and a command can be cancelled (its whole process group on the host).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko


class SSHError(Exception):
    """An SSH failure; ``str()`` is a sentence for the operator (no secrets)."""


class HostKeyMismatch(SSHError):
    """The host presented a key other than the pinned one; nothing was sent to it."""

    def __init__(self, host: str, pinned: str, presented: str) -> None:
        self.pinned, self.presented = pinned, presented
        super().__init__(
            f"the host key of {host} changed: pinned {pinned}, presented {presented}; "
            "nothing was sent to the host — verify the host and approve the new key"
        )


class HostKeyUnknown(SSHError):
    """No key is pinned for the host and trust on first use is off."""

    def __init__(self, host: str, presented: str) -> None:
        self.presented = presented
        super().__init__(
            f"the host key of {host} is not approved yet (it presents {presented}); "
            "scan and approve it first"
        )


@dataclass(frozen=True)
class HostKey:
    """A public host key: type (``ssh-ed25519`` …), base64 blob, ``SHA256:…`` fingerprint."""

    key_type: str
    key_base64: str
    fingerprint: str


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    banner: float = 10.0
    auth: float = 15.0
    keepalive: float = 15.0


@dataclass(frozen=True)
class Credential:
    """How to log in and become root. Secrets never leave this object in a repr."""

    user: str
    private_key: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    sudo_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Target:
    """Where one host is and how to reach it."""

    name: str
    address: str
    port: int
    credential: Credential
    host_key: HostKey | None
    trust_on_first_use: bool = False
    bastion: Target | None = None
    timeouts: Timeouts = Timeouts()


@dataclass(frozen=True)
class Result:
    """What one command did. Output beyond ``capture_limit`` is counted, not kept."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes
    stdout_bytes: int
    stderr_bytes: int
    started_at: float
    finished_at: float
    timed_out: bool = False
    cancelled: bool = False


OnOutput = Callable[[str, bytes], None]


def fingerprint(key_blob: bytes) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it: unpadded base64 of the blob's SHA-256."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_blob).digest()).decode().rstrip("=")


def _host_key(key: paramiko.PKey) -> HostKey:
    blob = key.asbytes()
    return HostKey(key.get_name(), base64.b64encode(blob).decode(), fingerprint(blob))


def _where(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _socket(
    address: str, port: int, timeout: float, bastion: Session | None
) -> socket.socket | paramiko.Channel:
    """A byte stream to the host's SSH port: TCP, or a ``direct-tcpip`` channel via a bastion."""
    where = _where(address, port)
    if bastion is not None:
        return bastion._tunnel(address, port, timeout)
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except TimeoutError:
        raise SSHError(f"could not connect to {where}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise SSHError(f"could not connect to {where}: {exc.strerror or exc}") from None


def _negotiate(
    sock: socket.socket | paramiko.Channel, where: str, timeouts: Timeouts, key_type: str = ""
) -> tuple[paramiko.Transport, HostKey]:
    """Run the key exchange (which proves the host holds the key it shows) and return its key.

    Nothing is authenticated yet: the caller decides whether the key is the pinned one.
    """
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeouts.banner
    transport.handshake_timeout = timeouts.banner
    transport.auth_timeout = timeouts.auth
    if key_type:
        # Ask for the pinned key's type, so that a host holding several keys shows that one.
        wanted = _KEY_TYPES.get(key_type, (key_type,))
        options = transport.get_security_options()
        offered = tuple(k for k in options.key_types if k in wanted)
        if offered:
            options.key_types = offered
    try:
        transport.start_client(timeout=timeouts.banner)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        raise SSHError(f"the SSH handshake with {where} failed: {_reason(exc)}") from None
    return transport, _host_key(key)


# A key type as stored (``ssh-rsa``) and the signature algorithms that prove it.
_KEY_TYPES = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, EOFError) or not text:
        return "the host closed the connection"
    return text


def scan_host_key(
    address: str, port: int, *, timeout: float = 10.0, bastion: Target | None = None
) -> HostKey:
    """The key the host presents, fetched without authenticating."""
    timeouts = Timeouts(connect=timeout, banner=timeout, auth=timeout)
    jump = Session.open(bastion) if bastion is not None else None
    try:
        sock = _socket(address, port, timeout, jump)
        transport, key = _negotiate(sock, _where(address, port), timeouts)
        transport.close()
        return key
    finally:
        if jump is not None:
            jump.close()


class Session:
    """One authenticated connection to one host, reused by every command of a job."""

    learned_host_key: HostKey | None = None  # set when trust on first use accepted a key

    @classmethod
    def open(cls, target: Target) -> Session:
        raise NotImplementedError

    def run(
        self,
        line: str,
        *,
        timeout: float,
        stdin: bytes | None = None,
        on_output: OnOutput | None = None,
        cancel: threading.Event | None = None,
        capture_limit: int = 1 << 20,
    ) -> Result:
        """Run ``line`` as root (sudo when needed) in its own process group."""
        raise NotImplementedError

    def upload(
        self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root",
        timeout: float = 60.0,
    ) -> None:  # fmt: skip
        """Write ``path`` atomically: a temp file beside it, chmod/chown, then rename."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _tunnel(self, address: str, port: int, timeout: float) -> paramiko.Channel:
        """A ``direct-tcpip`` channel from this host (a bastion) to ``address:port``."""
        raise NotImplementedError

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
