"""SSH to the nodes: the only module that imports paramiko.

Host keys are pinned: the key a host presents is compared with the node's pinned
fingerprint before any authentication, and a different key stops the connection.
Nothing here blocks forever: connect, banner, authentication and every command
have timeouts, and a command can be cancelled (its whole process group on the host).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


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
class Upload:
    """One file for ``Session.upload_files``."""

    path: str
    content: bytes = field(repr=False)
    mode: int
    owner: str = "root"
    group: str = "root"


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
# ``on_progress(sent, total)`` of a streamed upload.
OnProgress = Callable[[int, int], None]


class Reader(Protocol):
    """What a streamed stdin is read from: an open binary file, for one."""

    def read(self, size: int = -1, /) -> bytes: ...


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


def _private_key(credential: Credential, host: str) -> paramiko.PKey:
    """The credential's key as paramiko wants it: RSA, ECDSA or Ed25519, OpenSSH or PEM."""
    data = credential.private_key.strip().encode() + b"\n"
    password = credential.passphrase.encode() if credential.passphrase else None
    try:
        key: object = (
            serialization.load_ssh_private_key(data, password=password)
            if b"BEGIN OPENSSH PRIVATE KEY" in data
            else serialization.load_pem_private_key(data, password=password)
        )
    except (TypeError, ValueError):
        # The cause may quote the key's bytes: it is dropped, only the sentence stays.
        raise SSHError(
            f"the private key for {credential.user}@{host} cannot be read: wrong passphrase, "
            "or the key is damaged"
        ) from None
    except Exception:
        raise SSHError(f"the private key for {credential.user}@{host} is malformed") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return paramiko.ECDSAKey(vals=(key, key.public_key()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # paramiko reads Ed25519 only from OpenSSH text; re-encode it in memory, unencrypted.
        text = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        return paramiko.Ed25519Key(file_obj=io.StringIO(text.decode()))
    raise SSHError(f"the private key for {credential.user}@{host} is not RSA, ECDSA or Ed25519")


def _check_host_key(target: Target, presented: HostKey) -> HostKey | None:
    """Compare the presented key with the pinned one; returns the key learned on first use."""
    if target.host_key is not None and target.host_key.fingerprint:
        if not hmac.compare_digest(target.host_key.fingerprint, presented.fingerprint):
            raise HostKeyMismatch(target.name, target.host_key.fingerprint, presented.fingerprint)
        return None
    if not target.trust_on_first_use:
        raise HostKeyUnknown(target.name, presented.fingerprint)
    return presented


# How often the read loop wakes up when nothing arrives: the bound on noticing cancel/timeout.
_POLL = 0.05
_CHUNK = 1 << 16
# After TERM, how long the process group has before KILL; after that, how long to wait for the
# channel to close before giving up on it.
_KILL_GRACE = 2.0
_CLOSE_WAIT = 5.0
# How long output may go quiet after the exit status before the command counts as finished.
_LINGER = 2.0
_PIDFILE_DIR = "/run"
# A streamed stdin is read this much at a time; while the send window is full, the loop looks
# again this often.
STREAM_CHUNK = 1 << 20
_SEND_POLL = 0.005
# A streamed upload may take this long at least, plus this much per MiB (0.5 MiB/s at worst).
UPLOAD_FLOOR = 60.0
UPLOAD_SECONDS_PER_MIB = 2.0


def _remove_on_term(temp: str) -> str:
    """The script line that removes ``temp`` when the command is killed (TERM from a timeout or
    a cancel, or a lost connection): quoted whole, so any path is safe inside the trap."""
    q = shlex.quote
    return f"trap {q(f'rm -f {q(temp)}; exit 143')} TERM INT HUP PIPE\n"


def upload_timeout(size: int, *, per_mib: float = UPLOAD_SECONDS_PER_MIB) -> float:
    """How long a streamed upload of ``size`` bytes may take: it grows with the file."""
    return UPLOAD_FLOOR + per_mib * (max(0, size) / (1 << 20))


def _next_chunk(stream: Reader) -> tuple[memoryview, Reader | None]:
    """The next chunk of ``stream``, and the stream (None once it is exhausted)."""
    chunk = stream.read(STREAM_CHUNK)
    return memoryview(chunk), (stream if chunk else None)


class _Capture:
    """One stream's output: the first ``limit`` bytes kept, every byte counted."""

    def __init__(self, limit: int) -> None:
        self.limit, self.kept, self.count = limit, bytearray(), 0

    def add(self, data: bytes) -> None:
        self.count += len(data)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]


class Session:
    """One authenticated connection to one host, reused by every command of a job."""

    learned_host_key: HostKey | None = None  # set when trust on first use accepted a key

    # One session serves one thread at a time (a job's steps on one node run in order).
    def __init__(
        self, target: Target, transport: paramiko.Transport, bastion: Session | None
    ) -> None:
        self.target = target
        self._transport = transport
        self._bastion = bastion

    def __repr__(self) -> str:
        t = self.target
        return f"<Session {t.credential.user}@{t.name} ({_where(t.address, t.port)})>"

    @classmethod
    def open(cls, target: Target) -> Session:
        """Connect, check the host key (before anything is sent), then authenticate.

        With a bastion, the bastion's session is opened first (its own key checked the same way)
        and this host's SSH runs inside a ``direct-tcpip`` channel of it.
        """
        where = _where(target.address, target.port)
        bastion = cls.open(target.bastion) if target.bastion is not None else None
        transport: paramiko.Transport | None = None
        try:
            pinned_type = target.host_key.key_type if target.host_key is not None else ""
            sock = _socket(target.address, target.port, target.timeouts.connect, bastion)
            try:
                transport, presented = _negotiate(sock, where, target.timeouts, pinned_type)
            except SSHError:
                if not pinned_type:
                    raise
                # The host no longer has a key of the pinned type: take the key it does show,
                # which the check below reports as a changed key.
                sock = _socket(target.address, target.port, target.timeouts.connect, bastion)
                transport, presented = _negotiate(sock, where, target.timeouts)
            learned = _check_host_key(target, presented)
            _authenticate(transport, target)
            transport.set_keepalive(max(1, int(target.timeouts.keepalive)))
            session = cls(target, transport, bastion)
            session.learned_host_key = learned
            return session
        except BaseException:
            if transport is not None:
                transport.close()
            if bastion is not None:
                bastion.close()
            raise

    # Commands

    def _as_root(self, script: str) -> tuple[str, bytes]:
        """The command line that runs ``script`` as root, and what goes first on its stdin.

        A sudo password travels on stdin, never on a command line, followed by a marker line:
        the script reads up to the marker, so the command's own stdin starts right after it
        whether sudo read the password or (with cached or NOPASSWD rights) did not.
        """
        credential = self.target.credential
        if credential.user == "root":
            # Through sh even for root: root's login shell need not be a POSIX shell.
            return f"sh -c {shlex.quote(script)}", b""
        if not credential.sudo_password:
            return f"sudo -n -- sh -c {shlex.quote(script)}", b""
        marker = f"clusterpanel-stdin-{secrets.token_hex(8)}"
        skip = f'IFS= read -r _l; [ "$_l" = {marker} ] || IFS= read -r _l; unset _l\n'
        prefix = credential.sudo_password.encode() + b"\n" + marker.encode() + b"\n"
        return f"sudo -S -p '' -- sh -c {shlex.quote(skip + script)}", prefix

    def run(
        self,
        line: str,
        *,
        timeout: float,
        stdin: bytes | None = None,
        on_output: OnOutput | None = None,
        cancel: threading.Event | None = None,
        capture_limit: int = 1 << 20,
        stdin_stream: Reader | None = None,
    ) -> Result:
        """Run ``line`` as root (sudo when needed) in its own process group.

        stdout and stderr are read together as they arrive and passed to ``on_output``; on
        timeout or cancel the whole process group is killed (TERM, then KILL) over a second
        channel, and the result says so. ``stdin_stream`` follows ``stdin`` on the command's
        stdin, read ``STREAM_CHUNK`` bytes at a time as the channel takes them: never more than
        one chunk of it is held here.
        """
        if "\0" in line:
            raise SSHError("a command line cannot contain a NUL byte")
        pidfile = f"{_PIDFILE_DIR}/clusterpanel-run-{secrets.token_hex(8)}.pgid"
        q = shlex.quote
        # The group leader writes its pgid first; the kill channel reads it.
        leader = 'echo "$$" > "$1" && exec /bin/sh -c "$2"'
        script = (
            f"setsid -w /bin/sh -c {q(leader)} sh {q(pidfile)} {q(line)}\n"
            f"rc=$?; rm -f {q(pidfile)}; exit $rc"
        )
        command, prefix = self._as_root(script)
        channel = self._channel(command)
        started = time.time()
        deadline = time.monotonic() + timeout
        pending = memoryview(prefix + (stdin or b""))
        stream = stdin_stream
        out, err = _Capture(capture_limit), _Capture(capture_limit)
        timed_out = cancelled = False
        killer: paramiko.Channel | None = None
        give_up_at: float | None = None
        last_data, exited_at = time.monotonic(), 0.0
        try:
            if not pending and stream is not None:
                pending, stream = _next_chunk(stream)
            if not pending:
                channel.shutdown_write()
            while True:
                if killer is None:
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                    elif time.monotonic() >= deadline:
                        timed_out = True
                    if cancelled or timed_out:
                        killer = self._kill_group(pidfile)
                        give_up_at = time.monotonic() + _KILL_GRACE + _CLOSE_WAIT
                if give_up_at is not None and time.monotonic() >= give_up_at:
                    break
                sending = False
                if pending and killer is None and not channel.closed and channel.send_ready():
                    try:
                        sent = channel.send(bytes(pending[:_CHUNK]))
                    except OSError:
                        # The command ended without reading all of its stdin: its exit says why.
                        sent, pending, stream = 0, memoryview(b""), None
                    pending = pending[sent:]
                    if not pending and stream is not None:
                        pending, stream = _next_chunk(stream)
                    if not pending:
                        channel.shutdown_write()
                    sending = bool(pending)
                got = False
                while channel.recv_ready():
                    data = channel.recv(_CHUNK)
                    got = True
                    out.add(data)
                    if on_output is not None:
                        on_output("stdout", data)
                while channel.recv_stderr_ready():
                    data = channel.recv_stderr(_CHUNK)
                    got = True
                    err.add(data)
                    if on_output is not None:
                        on_output("stderr", data)
                now = time.monotonic()
                if got:
                    last_data = now
                    continue
                if sending:
                    continue  # the channel takes more: no wait between stdin packets
                if channel.recv_ready() or channel.recv_stderr_ready():
                    continue  # arrived just now, maybe with the end: read it first
                if channel.closed:
                    # A host that hung up without its EOF (paramiko then marks the channel done
                    # with status -1): the connection was lost, the command's end is unknown.
                    if not channel.eof_received and not self._transport.is_active():
                        raise SSHError(
                            f"the connection to {self.target.name} was lost while running a "
                            "command: the host went away or the network failed"
                        )
                    break
                if channel.exit_status_ready():
                    # sshd may send the exit status before the last output: done at the EOF,
                    # which follows all of it (paramiko handles packets in order). A child
                    # left in the background can hold the output open: then done after a
                    # quiet linger.
                    exited_at = exited_at or now
                    if channel.eof_received or now - max(exited_at, last_data) > _LINGER:
                        break
                if not self._transport.is_active():
                    raise SSHError(
                        f"the connection to {self.target.name} was lost while running a command"
                    )
                # Waiting for output, or for the host to open the send window again.
                select.select([channel], [], [], _SEND_POLL if pending else _POLL)
            exit_code = channel.recv_exit_status() if channel.exit_status_ready() else None
            if exit_code == -1:
                exit_code = None  # ended by a signal: there is no exit code
        except BaseException:
            # on_output failed, or we were interrupted: the command must not run on unwatched.
            if killer is None and self._transport.is_active():
                killer = self._kill_group(pidfile)
            raise
        finally:
            channel.close()
            if killer is not None:
                _finish(killer, _KILL_GRACE + 1)
        return Result(
            exit_code=exit_code,
            stdout=bytes(out.kept),
            stderr=bytes(err.kept),
            stdout_bytes=out.count,
            stderr_bytes=err.count,
            started_at=started,
            finished_at=time.time(),
            timed_out=timed_out,
            cancelled=cancelled,
        )

    def _channel(self, command: str) -> paramiko.Channel:
        try:
            channel = self._transport.open_session(timeout=self.target.timeouts.connect)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHError(
                f"could not start a command on {self.target.name}: {_reason(exc)}"
            ) from None
        return channel

    def _kill_group(self, pidfile: str) -> paramiko.Channel | None:
        """Start killing the command's process group (TERM, then KILL); returns the channel
        doing it, or None when the connection is gone (the host will hang up on the command)."""
        q = shlex.quote(pidfile)
        grace = int(_KILL_GRACE * 10)
        script = (
            # The command may not have written its pgid yet: wait for it a little.
            f"i=0; while [ ! -s {q} ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n"
            f"[ -s {q} ] || exit 0\n"
            f"pg=$(cat {q})\n"
            'case "$pg" in ""|*[!0-9]*) exit 0 ;; esac\n'
            # setsid made the leader's pid the session id and the group id. Kill the session
            # (pkill -s) as well as the group: tools such as timeout(1) move their children
            # into a group of their own, but never out of the session.
            # "kill -TERM -<pgid>": dash's kill takes neither "--" nor "-s TERM -<pgid>".
            'alive() { kill -0 "-$pg" 2>/dev/null || { command -v pgrep >/dev/null && '
            'pgrep -s "$pg" >/dev/null; }; }\n'
            'hit() { kill "-$1" "-$pg" 2>/dev/null; command -v pkill >/dev/null && '
            'pkill "-$1" -s "$pg" 2>/dev/null; return 0; }\n'
            "alive || exit 0\n"
            "hit TERM\n"
            f"i=0; while alive && [ $i -lt {grace} ]; do sleep 0.1; i=$((i+1)); done\n"
            f"hit KILL; rm -f {q}; exit 0"
        )
        command, prefix = self._as_root(script)
        try:
            channel = self._channel(command)
            if prefix:
                channel.sendall(prefix)
            channel.shutdown_write()
        except (SSHError, OSError, paramiko.SSHException):
            return None
        return channel

    def upload(
        self, path: str, content: bytes, *, mode: int, owner: str = "root", group: str = "root",
        timeout: float = 60.0,
    ) -> None:  # fmt: skip
        """Write ``path`` atomically: a temp file beside it, chmod/chown, then rename.

        The content goes over stdin (never on a command line); the parent directory is created
        when missing. A failure removes the temp file and raises ``SSHError``; so does a timeout,
        whose TERM the script traps to remove it.
        """
        _check_upload(path, mode, owner, group)
        directory, _, base = path.rpartition("/")
        directory = directory or "/"
        temp = f"{directory.rstrip('/')}/.{base}.clusterpanel-{secrets.token_hex(6)}.tmp"
        q = shlex.quote
        script = (
            _remove_on_term(temp)
            # Missing directories as mkdir makes them (0755); the temp file private until chmod.
            + f"(umask 022; mkdir -p {q(directory)}) && umask 077 && cat > {q(temp)} && "
            f"chown {q(owner)}:{q(group)} {q(temp)} && chmod {mode:04o} {q(temp)} && "
            f"mv -f {q(temp)} {q(path)} || {{ rc=$?; rm -f {q(temp)}; exit $rc; }}"
        )
        result = self.run(script, timeout=timeout, stdin=content)
        if result.exit_code != 0:
            why = "timed out" if result.timed_out else result.stderr.decode(errors="replace")
            raise SSHError(f"writing {path} on {self.target.name} failed: {why.strip()}")

    def upload_stream(
        self,
        path: str,
        source: Reader,
        size: int,
        *,
        sha256: str,
        mode: int,
        owner: str = "root",
        group: str = "root",
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Write ``path`` from ``source`` (``size`` bytes whose digest is ``sha256``), streamed
        over the command's stdin one chunk at a time: a file of any size, never in memory whole.

        Atomic as ``upload``: a temp file beside the target, its sha256 checked against
        ``sha256`` on the host, chmod/chown, then rename. A short or changed source, a cancel,
        a timeout or a lost connection leave no file at ``path`` and no temp file (the script
        removes it, on TERM too). ``timeout`` defaults to ``upload_timeout(size)``;
        ``on_progress(sent, size)`` is called about every tenth of the file. Returns the
        command's result (``cancelled`` set when ``cancel`` stopped it); raises ``SSHError``
        when the file was not written for another reason.
        """
        _check_upload(path, mode, owner, group)
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise SSHError(f"{sha256!r} is not a sha256 digest")
        directory, _, base = path.rpartition("/")
        directory = directory or "/"
        temp = f"{directory.rstrip('/')}/.{base}.clusterpanel-{secrets.token_hex(6)}.tmp"
        q = shlex.quote
        script = (
            # Killed (cancel, timeout): the temp file goes too; cat is in the same group.
            _remove_on_term(temp)
            + f"(umask 022; mkdir -p {q(directory)}) && umask 077 && cat > {q(temp)} && "
            f"got=$(sha256sum < {q(temp)} | cut -c1-64) && "
            f'{{ [ "$got" = {sha256} ] || {{ echo "received $(wc -c < {q(temp)}) bytes with '
            f'sha256 $got, expected {size} bytes with sha256 {sha256}" >&2; false; }}; }} && '
            f"chown {q(owner)}:{q(group)} {q(temp)} && chmod {mode:04o} {q(temp)} && "
            f"mv -f {q(temp)} {q(path)} || {{ rc=$?; rm -f {q(temp)}; exit $rc; }}"
        )
        reader = _Counted(source, size, on_progress)
        limit = upload_timeout(size) if timeout is None else timeout
        result = self.run(script, timeout=limit, stdin_stream=reader, cancel=cancel)
        if result.cancelled:
            return result
        if result.timed_out:
            raise SSHError(
                f"writing {path} on {self.target.name} timed out after {limit:.0f} s "
                f"({reader.sent} of {size} bytes sent)"
            )
        if result.exit_code != 0:
            why = result.stderr.decode(errors="replace").strip() or f"exit {result.exit_code}"
            raise SSHError(f"writing {path} on {self.target.name} failed: {why}")
        return result

    def upload_files(
        self,
        files: Sequence[Upload],
        *,
        timeout: float = 60.0,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        """Write ``files`` in order, each atomically as ``upload`` does, over one command: a
        bundle of 25 files costs one round trip, not 25.

        The script and the contents travel on stdin (base64 in here-documents, never on a command
        line). ``on_written(i)`` is called for each file written; at the first failure the later
        files are not touched, the failed one's temp file is removed and ``SSHError`` names it.
        Killed (a timeout), the script removes the temp file of the file being written.
        """
        if len(files) == 1:
            file = files[0]
            self.upload(
                file.path, file.content, mode=file.mode, owner=file.owner, group=file.group,
                timeout=timeout,
            )  # fmt: skip
            if on_written is not None:
                on_written(0)
            return
        # The here-document's end line: base64 never has an underscore, so no content ends it.
        end = f"CLUSTERPANEL_END_{secrets.token_hex(8)}"
        q = shlex.quote
        parts = []
        for index, file in enumerate(files):
            _check_upload(file.path, file.mode, file.owner, file.group)
            directory, _, base = file.path.rpartition("/")
            directory = directory or "/"
            temp = f"{directory.rstrip('/')}/.{base}.clusterpanel-{secrets.token_hex(6)}.tmp"
            parts.append(
                _remove_on_term(temp) + f"(umask 022; mkdir -p {q(directory)}) && umask 077 && "
                f"base64 -d > {q(temp)} <<'{end}' && "
                f"chown {q(file.owner)}:{q(file.group)} {q(temp)} && "
                f"chmod {file.mode:04o} {q(temp)} && mv -f {q(temp)} {q(file.path)} || "
                f"{{ rc=$?; rm -f {q(temp)}; exit $rc; }}\n"
                f"{base64.encodebytes(file.content).decode()}{end}\n"
                f"echo {_WROTE}{index}\n"
            )
        result = self.run("/bin/sh -s", timeout=timeout, stdin="".join(parts).encode())
        written = [
            int(line.removeprefix(_WROTE))
            for line in result.stdout.decode(errors="replace").splitlines()
            if line.startswith(_WROTE) and line.removeprefix(_WROTE).isdigit()
        ]
        if on_written is not None:
            for index in written:
                on_written(index)
        if result.exit_code != 0 or len(written) != len(files):
            failed = files[len(written)].path if len(written) < len(files) else files[-1].path
            why = "timed out" if result.timed_out else result.stderr.decode(errors="replace")
            raise SSHError(f"writing {failed} on {self.target.name} failed: {why.strip()}")

    def download(self, path: str, *, max_bytes: int, timeout: float = 300.0) -> bytes:
        """The content of ``path`` on the host, read as root (``head -c``, through sudo when
        needed) and streamed over the channel; never more than ``max_bytes`` (``SSHError``
        when the file is larger, or missing, or unreadable)."""
        _check_path(path)
        if max_bytes < 0:
            raise SSHError("max_bytes must not be negative")
        q = shlex.quote
        # One byte more than allowed tells "too large" from "exactly the limit".
        line = f"test -f {q(path)} && head -c {max_bytes + 1} -- {q(path)}"
        result = self.run(line, timeout=timeout, capture_limit=max_bytes + 1)
        if result.timed_out:
            raise SSHError(f"reading {path} on {self.target.name} timed out")
        if result.exit_code != 0:
            why = result.stderr.decode(errors="replace").strip() or "no such file"
            raise SSHError(f"reading {path} on {self.target.name} failed: {why}")
        if result.stdout_bytes > max_bytes:
            raise SSHError(
                f"{path} on {self.target.name} is larger than the limit of {max_bytes} bytes"
            )
        return result.stdout

    def close(self) -> None:
        self._transport.close()
        if self._bastion is not None:
            self._bastion.close()

    def _tunnel(self, address: str, port: int, timeout: float) -> paramiko.Channel:
        """A ``direct-tcpip`` channel from this host (a bastion) to ``address:port``."""
        try:
            return self._transport.open_channel(
                "direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHError(
                f"the bastion {self.target.name} could not reach {_where(address, port)}: "
                f"{_reason(exc)}"
            ) from None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Counted:
    """A source read for ``upload_stream``: counts the bytes, reports every tenth of ``size``,
    and never gives more than ``size`` bytes (a file that grew is cut, then fails the digest)."""

    def __init__(self, source: Reader, size: int, on_progress: OnProgress | None) -> None:
        self.source, self.size, self.on_progress = source, max(0, size), on_progress
        self.sent, self._next = 0, 1

    def read(self, size: int = -1, /) -> bytes:
        room = self.size - self.sent
        if room <= 0:
            return b""
        chunk = self.source.read(room if size < 0 else min(size, room))
        self.sent += len(chunk)
        if self.on_progress is not None:
            # Once per read that passed a tenth (or more), and where a short source stopped.
            passed = False
            while self._next <= 10 and self.sent * 10 >= self._next * self.size:
                self._next, passed = self._next + 1, True
            if not chunk and self._next <= 10:
                self._next, passed = 11, True
            if passed:
                self.on_progress(self.sent, self.size)
        return chunk


# What the batch upload prints after each file it wrote (its index follows).
_WROTE = "clusterpanel-wrote "
_ACCOUNT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$|^[0-9]{1,10}$")


def _check_upload(path: str, mode: int, owner: str, group: str) -> None:
    _check_path(path)
    for name, value in (("owner", owner), ("group", group)):
        if not _ACCOUNT.match(value):
            raise SSHError(f"the file {name} '{value}' is not a valid user or group name")
    if not 0 <= mode <= 0o7777:
        raise SSHError(f"the file mode {mode:o} is not a valid mode")


def _check_path(path: str) -> None:
    if not path.startswith("/") or "\0" in path or "\n" in path or path.endswith("/"):
        raise SSHError(f"{path!r} is not an absolute file path on one line")


def _authenticate(transport: paramiko.Transport, target: Target) -> None:
    """Log in with the credential's key or password; nothing from ~/.ssh or an agent."""
    credential = target.credential
    try:
        if credential.private_key:
            transport.auth_publickey(credential.user, _private_key(credential, target.name))
        elif credential.password:
            transport.auth_password(credential.user, credential.password)
        else:
            raise SSHError(f"no private key or password to log in to {target.name} with")
    except paramiko.AuthenticationException:
        how = "key" if credential.private_key else "password"
        raise SSHError(
            f"{target.name} refused the {how} of {credential.user}: authentication failed"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise SSHError(f"logging in to {target.name} failed: {_reason(exc)}") from None
    if not transport.is_authenticated():
        raise SSHError(f"{target.name} did not accept the login of {credential.user}")


def _finish(channel: paramiko.Channel, wait: float) -> None:
    """Wait (bounded) for a helper channel's command to end, then close it."""
    deadline = time.monotonic() + wait
    while not channel.exit_status_ready() and time.monotonic() < deadline:
        if channel.closed:
            break
        time.sleep(_POLL)
    channel.close()
