"""nodes.ssh against real sshd test hosts (tests/hosts.py): pinned keys, logins, sudo, streaming,
timeouts, cancel, uploads and bastions.

The hosts share this machine's PID namespace, so "the remote process is gone" is checked with
``ps`` here.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nodes import ssh
from tests import hosts
from tests.hosts import HostSpec, TestHost

# nodes.ssh is the engine's: no Django, no database.
pytestmark = pytest.mark.no_database

MakeHosts = Callable[[Sequence[HostSpec]], list[TestHost]]


@pytest.fixture
def root(ssh_client_key: str) -> ssh.Credential:
    return ssh.Credential(user="root", private_key=ssh_client_key)


def _processes_with(text: str) -> list[str]:
    args = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True)
    return [line for line in args.stdout.splitlines() if text in line]


def _wait_gone(text: str, within: float) -> float:
    """Seconds until no process shows ``text`` in its arguments; fails after ``within``."""
    start = time.monotonic()
    while _processes_with(text):
        assert time.monotonic() - start < within, f"still running: {_processes_with(text)}"
        time.sleep(0.1)
    return time.monotonic() - start


def _unique_sleep() -> str:
    # A sleep no other test runs, so that ps finds exactly ours.
    return f"1000.{secrets.randbelow(10**9):09d}"


def test_it_scans_the_key_the_host_presents(test_hosts: list[TestHost]) -> None:
    host = test_hosts[0]
    logins = host.accepted_logins()

    key = ssh.scan_host_key(host.address, host.port, timeout=5)

    assert key == ssh.HostKey(host.host_key_type, host.host_key_base64, host.host_key_fingerprint)
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", f"{host.host_key_path}.pub"], capture_output=True, text=True
    )
    assert key.fingerprint == keygen.stdout.split()[1]
    assert host.accepted_logins() == logins


def test_a_pinned_key_runs_commands_and_records_exit_codes(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    host = test_hosts[1]
    seen: list[tuple[str, bytes]] = []
    with ssh.Session.open(host.target(root)) as session:
        result = session.run(
            "hostname; echo oops >&2; exit 3",
            timeout=10,
            on_output=lambda s, d: seen.append((s, d)),
        )
        second = session.run("cat /sys/class/dmi/id/product_uuid; id -u", timeout=10)

    assert result.exit_code == 3
    assert result.stdout == b"node-2\n" and result.stderr == b"oops\n"
    assert (result.stdout_bytes, result.stderr_bytes) == (7, 5)
    assert not result.timed_out and not result.cancelled
    assert result.started_at <= result.finished_at
    assert b"".join(d for s, d in seen if s == "stdout") == b"node-2\n"
    assert b"".join(d for s, d in seen if s == "stderr") == b"oops\n"
    assert second.stdout == f"{host.product_uuid}\n0\n".encode()
    assert any("hostname; echo oops >&2; exit 3" in c for c in host.received_commands())


def test_a_changed_host_key_is_refused_before_authentication(
    make_test_hosts: MakeHosts, root: ssh.Credential
) -> None:
    (host,) = make_test_hosts([HostSpec("swapped")])
    pinned = host.target(root)  # the key as approved
    old = host.host_key_fingerprint
    new = host.swap_host_key()
    logins, received = host.accepted_logins(), host.received_commands()

    with pytest.raises(ssh.HostKeyMismatch) as refused:
        ssh.Session.open(pinned)

    assert old in str(refused.value) and new in str(refused.value)
    assert (refused.value.pinned, refused.value.presented) == (old, new)
    assert host.accepted_logins() == logins == 0
    assert host.received_commands() == received == []


def test_an_unknown_host_key_is_refused_unless_trusted_on_first_use(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    host = test_hosts[2]
    logins = host.accepted_logins()

    with pytest.raises(ssh.HostKeyUnknown) as unknown:
        ssh.Session.open(host.target(root, pinned=False))
    assert host.host_key_fingerprint in str(unknown.value)
    assert host.accepted_logins() == logins

    with ssh.Session.open(host.target(root, pinned=False, trust_on_first_use=True)) as session:
        assert session.learned_host_key == ssh.HostKey(
            host.host_key_type, host.host_key_base64, host.host_key_fingerprint
        )
        assert session.run("true", timeout=10).exit_code == 0
    with ssh.Session.open(host.target(root)) as session:
        assert session.learned_host_key is None  # pinned: nothing to learn


def test_a_password_login_and_a_sudo_password_run_as_root(test_hosts: list[TestHost]) -> None:
    host = test_hosts[0]
    credential = ssh.Credential(
        user=hosts.PASSWORD_USER, password=hosts.OPS_PASSWORD, sudo_password=hosts.OPS_PASSWORD
    )
    before = len(host.received_commands())
    with ssh.Session.open(host.target(credential)) as session:
        whoami = session.run("id -u", timeout=10)
        piped = session.run("cat", timeout=10, stdin=b"the command's own stdin\n")

    assert (whoami.exit_code, whoami.stdout, whoami.stderr) == (0, b"0\n", b"")
    assert piped.stdout == b"the command's own stdin\n"
    sent = host.received_commands()[before:]
    assert len(sent) == 2 and all(c.startswith("sudo -S -p '' -- sh -c ") for c in sent)
    assert not any(hosts.OPS_PASSWORD in c for c in host.received_commands())


def test_a_wrong_password_is_an_ssh_error_without_the_password(test_hosts: list[TestHost]) -> None:
    credential = ssh.Credential(user=hosts.PASSWORD_USER, password="not-the-password-42")
    with pytest.raises(ssh.SSHError) as refused:
        ssh.Session.open(test_hosts[0].target(credential))
    assert "authentication failed" in str(refused.value)
    assert "not-the-password-42" not in str(refused.value) + repr(refused.value)


def test_passwordless_sudo_runs_as_root(test_hosts: list[TestHost], ssh_client_key: str) -> None:
    host = test_hosts[3]
    credential = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=ssh_client_key)
    before = len(host.received_commands())
    with ssh.Session.open(host.target(credential)) as session:
        result = session.run("id -u; echo $0", timeout=10)
    assert result.exit_code == 0 and result.stdout.splitlines()[0] == b"0"
    assert host.received_commands()[before].startswith("sudo -n -- sh -c ")


@pytest.mark.parametrize(
    ("key_type", "extra"),
    [("rsa", ["-b", "2048", "-m", "PEM"]), ("ecdsa", ["-b", "384"]), ("ed25519", [])],
)
def test_rsa_ecdsa_and_ed25519_keys_with_passphrases_log_in(
    test_hosts: list[TestHost], tmp_path: Path, key_type: str, extra: list[str]
) -> None:
    host = test_hosts[4]
    passphrase = f"pass-{key_type}-phrase"
    private, public = hosts.client_key(tmp_path, key_type, key_type, passphrase, extra)
    host.authorize(hosts.SUDO_NOPASSWD_USER, public)
    credential = ssh.Credential(
        user=hosts.SUDO_NOPASSWD_USER, private_key=private, passphrase=passphrase
    )
    with ssh.Session.open(host.target(credential)) as session:
        assert session.run("id -u", timeout=10).stdout == b"0\n"

    wrong = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=private, passphrase="nope")
    with pytest.raises(ssh.SSHError, match="wrong passphrase"):
        ssh.Session.open(host.target(wrong))


def test_ten_mebibytes_on_both_streams_at_once_are_counted_and_capped(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    size = 10 * 1024 * 1024
    tails: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def keep_tail(stream: str, data: bytes) -> None:  # what is past the cap, if it fails
        tails[stream] = (tails[stream] + data)[-300:]

    with ssh.Session.open(test_hosts[1].target(root)) as session:
        result = session.run(
            f"head -c {size} /dev/zero & head -c {size} /dev/zero >&2; wait",
            timeout=60,
            capture_limit=1000,
            on_output=keep_tail,
        )
    assert result.exit_code == 0
    assert result.stdout_bytes == result.stderr_bytes == size, tails
    assert result.stdout == result.stderr == b"\0" * 1000


def test_a_timed_out_command_is_killed_with_its_children(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    duration = _unique_sleep()
    with ssh.Session.open(test_hosts[2].target(root)) as session:
        started = time.monotonic()
        result = session.run(f"sleep {duration}; echo never", timeout=2)
        took = time.monotonic() - started
        assert session.run("echo still usable", timeout=10).stdout == b"still usable\n"
    assert result.timed_out and not result.cancelled
    assert b"never" not in result.stdout
    assert took < 10  # 2 s, then TERM; bounded even on a loaded machine
    _wait_gone(f"sleep {duration}", within=3)


def test_a_cancelled_command_is_gone_within_five_seconds(
    test_hosts: list[TestHost], ssh_client_key: str
) -> None:
    # Through sudo, as most nodes are reached: the kill must reach root's process group too.
    credential = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=ssh_client_key)
    duration = _unique_sleep()
    cancel = threading.Event()
    with ssh.Session.open(test_hosts[3].target(credential)) as session:
        timer = threading.Timer(1.0, cancel.set)
        timer.start()
        result = session.run(f"sleep {duration} & wait", timeout=60, cancel=cancel)
        returned = time.monotonic()
    assert result.cancelled and not result.timed_out
    assert _processes_with(f"sleep {duration}") == [] or _wait_gone(f"sleep {duration}", 5) < 5
    assert time.monotonic() - returned < 5


def test_a_host_that_dies_mid_command_is_an_ssh_error_not_a_hang(
    make_test_hosts: MakeHosts, root: ssh.Credential
) -> None:
    (host,) = make_test_hosts([HostSpec("dying")])
    session = ssh.Session.open(host.target(root, timeouts=ssh.Timeouts(keepalive=1)))
    threading.Timer(1.0, host.stop).start()
    started = time.monotonic()
    with pytest.raises(ssh.SSHError, match="lost"):
        session.run("sleep 30", timeout=30)
    assert time.monotonic() - started < 6
    session.close()


def test_an_upload_is_atomic_with_its_mode_and_owner(
    test_hosts: list[TestHost], ssh_client_key: str
) -> None:
    host = test_hosts[4]
    credential = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=ssh_client_key)
    content = b"-----BEGIN PRIVATE KEY-----\nsecret-upload-content\n" + bytes(range(256)) * 64
    path = "/etc/kubernetes/pki/it's a key.pem"
    pki = host.bind_dir("/etc/kubernetes") / "pki"
    try:
        with ssh.Session.open(host.target(credential)) as session:
            session.upload(path, content, mode=0o640, group=hosts.SUDO_NOPASSWD_USER)
            first = host.run_local("stat -c '%a %U %G' /etc/kubernetes/pki/*").stdout
            assert (pki / "it's a key.pem").read_bytes() == content
            session.upload(path, content[:10], mode=0o600, owner=hosts.SUDO_NOPASSWD_USER)

        assert first == f"640 root {hosts.SUDO_NOPASSWD_USER}\n"
        assert host.run_local("stat -c %a /etc/kubernetes/pki").stdout == "755\n"
        assert (pki / "it's a key.pem").read_bytes() == content[:10]
        stat = host.run_local("stat -c '%a %U %G' /etc/kubernetes/pki/*")
        assert stat.stdout == f"600 {hosts.SUDO_NOPASSWD_USER} root\n"
        assert [p.name for p in pki.iterdir()] == ["it's a key.pem"]  # no temp file left
        assert not any("secret-upload-content" in c for c in host.received_commands())
    finally:
        shutil.rmtree(pki, ignore_errors=True)  # the shared host's /etc/kubernetes stays empty


def test_files_uploaded_together_each_get_their_mode_and_owner_and_a_failure_stops_there(
    test_hosts: list[TestHost],
) -> None:
    """Through sudo with a password (the password and the script share stdin)."""
    host = test_hosts[3]
    credential = ssh.Credential(
        user=hosts.SUDO_PASSWORD_USER, password=hosts.OPS_PASSWORD, sudo_password=hosts.OPS_PASSWORD
    )
    binary = bytes(range(256)) * 300 + b"no newline at the end"
    files = [
        ssh.Upload("/etc/kubernetes/pki/ca.key", b"secret-batch-key\n", mode=0o600),
        ssh.Upload(
            "/etc/kubernetes/pki/etcd/blob", binary, mode=0o640, group=hosts.SUDO_PASSWORD_USER
        ),
        ssh.Upload("/etc/kubernetes/empty", b"", mode=0o644),
    ]
    root_dir = host.bind_dir("/etc/kubernetes")
    written: list[int] = []
    try:
        with ssh.Session.open(host.target(credential)) as session:
            session.upload_files(files, on_written=written.append)
            assert written == [0, 1, 2]
            assert (root_dir / "pki/ca.key").read_bytes() == b"secret-batch-key\n"
            assert (root_dir / "pki/etcd/blob").read_bytes() == binary
            assert (root_dir / "empty").read_bytes() == b""
            stat = host.run_local(
                "cd /etc/kubernetes && stat -c '%n %a %U %G' pki/ca.key pki/etcd/blob empty"
            )
            assert stat.stdout.splitlines() == [
                "pki/ca.key 600 root root",
                f"pki/etcd/blob 640 root {hosts.SUDO_PASSWORD_USER}",
                "empty 644 root root",
            ]
            # An owner the host does not know: the first file is written, the rest are not.
            written.clear()
            bad = [
                ssh.Upload("/etc/kubernetes/first", b"1\n", mode=0o644),
                ssh.Upload("/etc/kubernetes/second", b"2\n", mode=0o644, owner="nosuchuser"),
                ssh.Upload("/etc/kubernetes/third", b"3\n", mode=0o644),
            ]
            with pytest.raises(ssh.SSHError, match=r"writing /etc/kubernetes/second on \S+ failed"):
                session.upload_files(bad, on_written=written.append)
        assert written == [0]
        assert (root_dir / "first").read_bytes() == b"1\n"
        assert not (root_dir / "second").exists() and not (root_dir / "third").exists()
        assert not [p.name for p in root_dir.iterdir() if p.name.endswith(".tmp")]
        assert not any("secret-batch-key" in c for c in host.received_commands())
    finally:
        for child in root_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink()


def test_a_timed_out_upload_leaves_no_temp_file(
    test_hosts: list[TestHost], ssh_client_key: str
) -> None:
    """A timeout kills the writing command with TERM: the script's trap removes the temp file,
    for a single upload and for files written together."""
    host = test_hosts[4]
    credential = ssh.Credential(user=hosts.SUDO_NOPASSWD_USER, private_key=ssh_client_key)
    large = bytes(64 << 20)  # far more than 0.3 s of sending
    root_dir = host.bind_dir("/etc/kubernetes")
    try:
        with ssh.Session.open(host.target(credential)) as session:
            with pytest.raises(ssh.SSHError, match="timed out"):
                session.upload("/etc/kubernetes/it's big", large, mode=0o644, timeout=0.3)
            together = [
                ssh.Upload("/etc/kubernetes/small", b"1\n", mode=0o644),
                ssh.Upload("/etc/kubernetes/big", large, mode=0o644),
            ]
            with pytest.raises(ssh.SSHError, match="writing /etc/kubernetes/big .* timed out"):
                session.upload_files(together, timeout=0.3)
            # The command is gone when run returns; its trap ran before it went.
            left = host.run_local("ls -A /etc/kubernetes").stdout.split()
        assert "big" not in left and "it's big" not in " ".join(left)
        assert not [name for name in left if name.endswith(".tmp")], left
    finally:
        for child in root_dir.iterdir():
            child.unlink()


def test_an_upload_refuses_a_relative_path(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    with ssh.Session.open(test_hosts[0].target(root)) as session:
        for bad in ("etc/x", "/etc/x\n/etc/y", "/etc/dir/"):
            with pytest.raises(ssh.SSHError, match="absolute"):
                session.upload(bad, b"x", mode=0o644)


def test_a_bastion_carries_the_connection_and_its_key_is_checked_too(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    bastion_host, host = test_hosts[0], test_hosts[1]
    bastion = bastion_host.target(root)
    with ssh.Session.open(host.target(root, bastion=bastion)) as session:
        assert session.run("hostname", timeout=10).stdout == b"node-2\n"
    assert ssh.scan_host_key(host.address, 22, bastion=bastion).fingerprint == (
        host.host_key_fingerprint
    )

    # The bastion presents a key other than the one pinned for it: refused before its login,
    # and the host behind it is never reached.
    logins, behind = bastion_host.accepted_logins(), host.accepted_logins()
    wrong = ssh.HostKey(
        test_hosts[2].host_key_type,
        test_hosts[2].host_key_base64,
        test_hosts[2].host_key_fingerprint,
    )
    changed = ssh.Target(
        bastion.name, bastion.address, bastion.port, bastion.credential, host_key=wrong
    )
    with pytest.raises(ssh.HostKeyMismatch) as refused:
        ssh.Session.open(host.target(root, bastion=changed))
    assert bastion_host.host_key_fingerprint in str(refused.value)
    assert (bastion_host.accepted_logins(), host.accepted_logins()) == (logins, behind)


def test_a_pinned_key_of_a_type_the_host_no_longer_has_is_a_changed_key(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    host = test_hosts[3]
    logins = host.accepted_logins()
    gone = ssh.HostKey("ssh-rsa", "AAAAB3NzaC1yc2E=", "SHA256:" + "r" * 43)
    target = ssh.Target(host.name, host.address, host.port, root, host_key=gone)
    with pytest.raises(ssh.HostKeyMismatch) as refused:
        ssh.Session.open(target)
    assert refused.value.presented == host.host_key_fingerprint
    assert host.accepted_logins() == logins


def test_a_failing_output_reader_kills_the_command(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    duration = _unique_sleep()

    def reader(stream: str, data: bytes) -> None:
        raise RuntimeError("the log store is down")

    session = ssh.Session.open(test_hosts[4].target(root))
    with session, pytest.raises(RuntimeError, match="log store"):
        session.run(f"echo started; sleep {duration}", timeout=60, on_output=reader)
    _wait_gone(f"sleep {duration}", within=5)


def test_output_sent_after_the_exit_status_is_still_read(
    test_hosts: list[TestHost], root: ssh.Credential
) -> None:
    # A child left in the background writes on after its parent exits: its output is kept, and
    # the command is done once the output ends (it does not wait for the timeout).
    with ssh.Session.open(test_hosts[2].target(root)) as session:
        started = time.monotonic()
        result = session.run("(sleep 1; echo late) & echo early", timeout=30)
    assert result.exit_code == 0 and result.stdout == b"early\nlate\n"
    assert time.monotonic() - started < 10
