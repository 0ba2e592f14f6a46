"""SSH to the nodes: the only module that imports paramiko.

Host keys are pinned: the key a host presents is compared with the node's pinned
fingerprint before any authentication, and a different key stops the connection.
Nothing here blocks forever: connect, banner, authentication and every command
have timeouts, and a command can be cancelled (its whole process group on the host).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


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


def scan_host_key(
    address: str, port: int, *, timeout: float = 10.0, bastion: Target | None = None
) -> HostKey:
    """The key the host presents, fetched without authenticating."""
    raise NotImplementedError


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

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
