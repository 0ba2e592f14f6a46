"""Test hosts: many "machines" on one machine (see docs TESTING.md, "Test hosts").

Each host is a real OpenSSH ``sshd -D`` on its own loopback address (``127.0.<block>.<i>``, port
22), started inside its own mount and UTS namespaces: its own hostname, its own ``/etc/kubernetes``,
``/var/lib/etcd``, ``/etc/systemd/system`` and ``/usr/local/sbin`` (bind-mounted from the host's
directory, where tests put recording stand-ins), its own ``/sys/class`` (a tmpfs holding its
product_uuid and MACs), and its own users: ``/etc/passwd``, ``/etc/shadow``, ``/etc/group``,
``/etc/sudoers.d`` and ``/etc/hosts`` are per-host files bind-mounted over the machine's, so the
machine itself gains no user.

Every command a host receives is appended to its ``received.log`` by the ``ForceCommand`` wrapper
before it runs (the canary of what was sent), and ``sshd -E`` with ``LogLevel VERBOSE`` writes one
``Accepted …`` line per authentication (the proof that a refused host key led to no login).

The hosts share this machine's PID namespace: a test can check with ``ps`` here that a remote
process is gone. A host's processes are found by its mount namespace, which is how it is stopped.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes import ssh

# Users every host has besides root (uids far above Debian's system range and the machine's users).
SUDO_NOPASSWD_USER = "deploy"  # key login, passwordless sudo
SUDO_PASSWORD_USER = "ops"  # key or password login, sudo asks for the password
PASSWORD_USER = SUDO_PASSWORD_USER  # the one user sshd accepts passwords from
OPS_PASSWORD = "ops-login-and-sudo-Pa55"  # a throwaway test host's password
_USERS = {SUDO_NOPASSWD_USER: 42001, SUDO_PASSWORD_USER: 42002}

# Where each address's sshd writes its pid: fixed, so that a later run finds an aborted run's sshd.
PID_DIR = Path("/run/clusterpanel-test-hosts")
# The mount points each host gets its own directory for (directory name under the host dir).
BIND_DIRS = {
    "/etc/kubernetes": "etc-kubernetes",
    "/var/lib/etcd": "var-lib-etcd",
    "/etc/systemd/system": "etc-systemd-system",
    "/usr/local/sbin": "usr-local-sbin",
    "/etc/sudoers.d": "etc/sudoers.d",
    # Where the install job writes: each host's own, never this machine's.
    "/etc/modules-load.d": "etc-modules-load.d",
    "/etc/sysctl.d": "etc-sysctl.d",
    "/etc/apt/sources.list.d": "etc-apt-sources.list.d",
    "/etc/apt/keyrings": "etc-apt-keyrings",
    "/etc/yum.repos.d": "etc-yum.repos.d",
    "/etc/pki/rpm-gpg": "etc-pki-rpm-gpg",
    "/etc/containerd": "etc-containerd",
    "/etc/crio": "etc-crio",
    # What remove-node empties after kubeadm reset: each host's own.
    "/etc/cni/net.d": "etc-cni-net.d",
    "/var/lib/kubelet": "var-lib-kubelet",
    # The binary layout of clusters without kubeadm: binaries, certificates and CNI plugins.
    "/opt/kubernetes": "opt-kubernetes",
    "/etc/k8s": "etc-k8s",
    "/opt/cni": "opt-cni",
    "/var/log/kubernetes": "var-log-kubernetes",
}
BIND_FILES = (
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/fstab",
)  # fmt: skip
# Every host's own /etc/fstab, with a swap line as installers find on fresh machines.
FSTAB = """# <file system> <mount point> <type> <options> <dump> <pass>
/dev/vda1 / ext4 errors=remount-ro 0 1
/swap.img none swap sw 0 0
"""
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
RECORD_SEPARATOR = b"\0"
_ACCEPTED = re.compile(r"^Accepted \S+ for ", re.MULTILINE)

_WRAPPER = """#!/bin/sh
# ForceCommand: record what the host received, then run it as sshd would have.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
printf '%s\\0' "$SSH_ORIGINAL_COMMAND" >> {log}
case "$SSH_ORIGINAL_COMMAND" in
  {sftp}|internal-sftp) exec {sftp} ;;
  "") exec /bin/sh -l ;;
esac
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


def xdist_block() -> int:
    """The address block of this pytest process: gw0 → 1, gw1 → 2, …; no xdist → 1.

    ``CLUSTERPANEL_TEST_HOSTS_BLOCK`` moves the first block (default 1), so that two test runs
    on one machine (two checkouts) use different addresses and never stop each other's hosts.
    """
    first = int(os.environ.get("CLUSTERPANEL_TEST_HOSTS_BLOCK", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return first + index


@dataclass(frozen=True)
class HostSpec:
    """What makes a host itself; give two hosts the same values to make duplicates on purpose."""

    name: str
    hostname: str | None = None  # defaults to ``name``
    product_uuid: str | None = None  # defaults to a fresh random UUID
    macs: tuple[str, ...] | None = None  # eth0, eth1, …; defaults to one random MAC


def _random_mac() -> str:
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFC) | 0x02  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)


def _fingerprint(key_base64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _pids_in_namespace(namespace: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _mount_namespace(int(entry)) == namespace:
            pids.append(int(entry))
    return pids


def _kill_namespace(
    pid: int,
    grace: float = 2.0,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGKILL),
) -> None:
    """Kill every process sharing ``pid``'s mount namespace: the host's sshd, its sessions, and
    the commands they run. Never this machine's own namespace."""
    namespace = _mount_namespace(pid)
    if namespace is None or namespace == _mount_namespace(os.getpid()):
        return
    for sig in signals:
        for member in _pids_in_namespace(namespace):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _pids_in_namespace(namespace):
            time.sleep(0.02)
        if not _pids_in_namespace(namespace):
            return


def _is_sshd(pid: int) -> bool:
    try:
        return b"sshd" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _ssh_banner(address: str, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class TestHost:
    """One running test host and what it recorded."""

    __test__ = False  # not a pytest test class

    name: str
    hostname: str
    address: str
    hostdir: Path
    product_uuid: str
    macs: tuple[str, ...]
    port: int = 22
    host_key_type: str = ""
    host_key_base64: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _stopping: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # Paths
    @property
    def received_log(self) -> Path:
        return self.hostdir / "received.log"

    @property
    def sshd_log(self) -> Path:
        return self.hostdir / "sshd.log"

    @property
    def pidfile(self) -> Path:
        return PID_DIR / f"{self.address}.pid"

    @property
    def host_key_path(self) -> Path:
        return self.hostdir / "ssh_host_ed25519_key"

    @property
    def host_key_fingerprint(self) -> str:
        return _fingerprint(self.host_key_base64)

    def bind_dir(self, mount_point: str) -> Path:
        """The directory behind one of ``BIND_DIRS``: what the host sees at ``mount_point``."""
        return self.hostdir / BIND_DIRS[mount_point]

    def target(
        self, credential: ssh.Credential, *, pinned: bool = True, **options: Any
    ) -> ssh.Target:
        """A ``nodes.ssh.Target`` for this host, its key pinned unless ``pinned=False``."""
        key = ssh.HostKey(self.host_key_type, self.host_key_base64, self.host_key_fingerprint)
        return ssh.Target(
            name=self.name, address=self.address, port=self.port, credential=credential,
            host_key=key if pinned else None, **options,
        )  # fmt: skip

    # What the host recorded
    def received_commands(self) -> list[str]:
        """Every ``$SSH_ORIGINAL_COMMAND`` the host received, in order (sftp included)."""
        if not self.received_log.exists():
            return []
        records = self.received_log.read_bytes().split(RECORD_SEPARATOR)
        return [r.decode(errors="replace") for r in records[:-1]]

    def accepted_logins(self) -> int:
        """How many logins sshd accepted (``Accepted publickey for …``, ``Accepted password for …``;
        not the ``Accepted key … found at`` lines of a key lookup)."""
        if not self.sshd_log.exists():
            return 0
        text = self.sshd_log.read_text(errors="replace")
        return len(_ACCEPTED.findall(text))

    def authorize(self, user: str, public_key_line: str) -> None:
        """Let ``user`` log in with one more public key (read by sshd at each login)."""
        with (self.hostdir / "authorized_keys" / user).open("a") as keys:
            keys.write(public_key_line.strip() + "\n")

    def run_local(self, command: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as root inside the host's namespaces (not over SSH; nothing recorded)."""
        assert self.process is not None and self.process.poll() is None, f"{self.name} is stopped"
        return subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "-u", "sh", "-c", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    # Life cycle
    def start(self, timeout: float = 5.0) -> None:
        self._launch()
        self.wait_until_up(timeout)

    def _launch(self) -> None:
        PID_DIR.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        _kill_stale(self.pidfile)
        log = (self.hostdir / "unshare.log").open("ab")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--propagation", "private",
             "sh", "-c", self._namespace_script()],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        log.close()

    def wait_until_up(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            # sshd writes its pid file once it listens; an older sshd's banner proves nothing.
            if self._pidfile_is_ours() and _ssh_banner(self.address):
                return
            time.sleep(0.02)
        output = (self.hostdir / "unshare.log").read_text(errors="replace")
        sshd_log = self.sshd_log.read_text(errors="replace") if self.sshd_log.exists() else ""
        raise RuntimeError(f"test host {self.name} did not come up:\n{output}\n{sshd_log}")

    def _pidfile_is_ours(self) -> bool:
        try:
            return self.process is not None and int(self.pidfile.read_text()) == self.process.pid
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        """Kill the host at once, as a power cut would: sshd, every session and every command
        it runs get SIGKILL, so nothing says goodbye (no exit status, only the TCP close)."""
        with self._stopping:
            process, self.process = self.process, None
            if process is None:
                return
            _kill_namespace(process.pid, signals=(signal.SIGKILL,))
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
                process.wait()
            self.pidfile.unlink(missing_ok=True)

    def swap_host_key(self) -> str:
        """Give the host a new key and restart it; returns the new fingerprint."""
        self.stop()
        self.host_key_path.unlink(missing_ok=True)
        Path(f"{self.host_key_path}.pub").unlink(missing_ok=True)
        self._make_host_key()
        self.start()
        return self.host_key_fingerprint

    # Setup
    def _make_host_key(self) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.hostname,
             "-f", str(self.host_key_path)],
            check=True,
        )  # fmt: skip
        self.host_key_type, self.host_key_base64 = (
            Path(f"{self.host_key_path}.pub").read_text().split()[:2]
        )

    def _namespace_script(self) -> str:
        q = shlex.quote
        lines = ["set -e", f"hostname {q(self.hostname)}"]
        for mount_point, sub in BIND_DIRS.items():
            lines.append(f"mount --bind {q(str(self.hostdir / sub))} {q(mount_point)}")
        for path in (p for p in BIND_FILES if Path(p).exists()):
            lines.append(f"mount --bind {q(str(self.hostdir / path.lstrip('/')))} {q(path)}")
        if Path("/etc/machine-id").exists():
            lines.append(f"mount --bind {q(str(self.hostdir / 'etc/machine-id'))} /etc/machine-id")
        lines += [
            "mount -t tmpfs -o mode=0755 clusterpanel-sys-class /sys/class",
            "mkdir -p /sys/class/dmi/id /sys/class/net/lo",
            f"printf '%s\\n' {q(self.product_uuid)} > /sys/class/dmi/id/product_uuid",
            "echo 00:00:00:00:00:00 > /sys/class/net/lo/address",
        ]
        for index, mac in enumerate(self.macs):
            lines.append(f"mkdir -p /sys/class/net/eth{index}")
            lines.append(f"printf '%s\\n' {q(mac)} > /sys/class/net/eth{index}/address")
        config, log = self.hostdir / "sshd_config", self.sshd_log
        lines.append(f"exec /usr/sbin/sshd -D -f {q(str(config))} -E {q(str(log))}")
        return "\n".join(lines)

    def _prepare(self, client_public_key: str, password_hash: str) -> None:
        """Write the host's directory: key, config, wrapper, users, bind-mount sources."""
        hd = self.hostdir
        hd.mkdir(parents=True, exist_ok=True)
        hd.chmod(0o755)  # the non-root users run the wrapper and read their homes from here
        for sub in BIND_DIRS.values():
            (hd / sub).mkdir(parents=True, exist_ok=True)
        for mount_point in BIND_DIRS:
            Path(mount_point).mkdir(parents=True, exist_ok=True)  # an empty mount point at most
        if not self.host_key_path.exists():
            self._make_host_key()
        (hd / "authorized_keys").mkdir(exist_ok=True)
        for user in ("root", *_USERS):
            (hd / "authorized_keys" / user).write_text(client_public_key.strip() + "\n")
        self.received_log.touch()
        self.received_log.chmod(0o666)  # appended to by whichever user logged in
        wrapper = hd / "wrapper"
        wrapper.write_text(
            _WRAPPER.format(log=shlex.quote(str(self.received_log)), sftp=SFTP_SERVER)
        )
        wrapper.chmod(0o755)
        self._write_users(password_hash)
        (hd / "sshd_config").write_text(self._sshd_config())

    def _write_users(self, password_hash: str) -> None:
        etc = self.hostdir / "etc"
        etc.mkdir(exist_ok=True)

        def without_ours(path: str) -> list[str]:
            return [
                line for line in Path(path).read_text().splitlines()
                if line.split(":", 1)[0] not in _USERS
            ]  # fmt: skip

        passwd, shadow, group = (
            without_ours(p) for p in ("/etc/passwd", "/etc/shadow", "/etc/group")
        )
        for user, uid in _USERS.items():
            home = self.hostdir / "home" / user
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, uid, uid)
            passwd.append(f"{user}:x:{uid}:{uid}:clusterpanel test user:{home}:/bin/sh")
            secret = password_hash if user == PASSWORD_USER else "*"
            shadow.append(f"{user}:{secret}:19000:0:99999:7:::")
            group.append(f"{user}:x:{uid}:")
        (etc / "passwd").write_text("\n".join(passwd) + "\n")
        (etc / "group").write_text("\n".join(group) + "\n")
        (etc / "shadow").write_text("\n".join(shadow) + "\n")
        (etc / "shadow").chmod(0o640)
        (etc / "hosts").write_text(
            f"127.0.0.1 localhost\n{self.address} {self.hostname}\n::1 localhost ip6-localhost\n"
        )
        (etc / "hostname").write_text(self.hostname + "\n")
        (etc / "fstab").write_text(FSTAB)
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        sudoers = etc / "sudoers.d" / "clusterpanel-test"
        sudoers.write_text(
            "Defaults lecture=never\n"
            f"{SUDO_NOPASSWD_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
            f"{SUDO_PASSWORD_USER} ALL=(ALL:ALL) ALL\n"
        )
        sudoers.chmod(0o440)

    def _sshd_config(self) -> str:
        hd = self.hostdir
        return f"""\
ListenAddress {self.address}:{self.port}
HostKey {self.host_key_path}
PidFile {self.pidfile}
AuthorizedKeysFile {hd}/authorized_keys/%u
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 100
ClientAliveInterval 0
SetEnv HOSTDIR={hd}
ForceCommand {hd}/wrapper
Subsystem sftp {SFTP_SERVER}
Match User {PASSWORD_USER}
    PasswordAuthentication yes
"""


def _kill_stale(pidfile: Path) -> None:
    """An sshd an aborted run left on this address: kill it and its namespace's processes."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if _is_sshd(pid):
        _kill_namespace(pid)
    pidfile.unlink(missing_ok=True)


def _password_hash(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True,
        check=True,
    ).stdout.strip()  # fmt: skip


def client_key(
    workdir: Path,
    name: str = "client",
    key_type: str = "ed25519",
    passphrase: str = "",
    extra: Sequence[str] = (),
) -> tuple[str, str]:
    """A new client key pair made by ssh-keygen: (private key text, public key line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / name
    path.unlink(missing_ok=True)
    Path(f"{path}.pub").unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-C", name, *extra, "-f", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_text(), Path(f"{path}.pub").read_text().strip()


@contextlib.contextmanager
def start_hosts(
    specs: Sequence[HostSpec],
    workdir: Path,
    block: int,
    *,
    client_public_key: str,
    first: int = 1,
) -> Iterator[list[TestHost]]:
    """Start one host per spec on ``127.0.<block>.<first>``, ``…<first + 1>``, … in parallel;
    stop them all on exit. ``client_public_key`` may log in as every user."""
    if not 1 <= block <= 254 or first < 1 or first + len(specs) - 1 > 254:
        raise ValueError(f"no room for {len(specs)} hosts at 127.0.{block}.{first}")
    password_hash = _password_hash(OPS_PASSWORD)
    hosts = [
        TestHost(
            name=spec.name,
            hostname=spec.hostname or spec.name,
            address=f"127.0.{block}.{first + index}",
            hostdir=workdir / f"{spec.name}-{first + index}",
            product_uuid=spec.product_uuid or str(uuid.uuid4()),
            macs=spec.macs if spec.macs is not None else (_random_mac(),),
        )
        for index, spec in enumerate(specs)
    ]
    for host in hosts:
        shutil.rmtree(host.hostdir, ignore_errors=True)  # nothing recorded by an earlier host
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
            list(pool.map(lambda h: h._prepare(client_public_key, password_hash), hosts))
        for host in hosts:
            host._launch()
        for host in hosts:
            host.wait_until_up()
        yield hosts
    finally:
        for host in hosts:
            host.stop()


def remove_workdir(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
