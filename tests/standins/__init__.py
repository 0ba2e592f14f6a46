"""Recording stand-ins for the tools that cannot run here: kubeadm, kubectl, the package managers
(apt-get, apt-cache, apt-mark, dpkg-query, dnf, rpm), modprobe, sysctl, swapoff, crictl, curl,
wget and useradd, and ``openssl s_client`` (the other openssl commands run the real tool,
unrecorded).

kubeadm, the kubelet, a container runtime, a package repository and a kernel of one's own are not
available on the test machine (and the test hosts share its kernel). Each stand-in is a small
POSIX sh script put first on the PATH of every command the panel sends to a test host (the
host's own ``/usr/local/sbin``). It appends one record per call to ``.standin-calls`` beside it
(argv and stdin, format in ``_lib.sh``) and answers as the real tool would for the calls the
panel makes, keeping what a real host would remember (installed packages, holds, sysctl values)
in ``.standin-state/``. Nothing reaches the network or this machine's kernel.

Tests assert on ``calls(host)``: the exact command lines the panel's recipes ran, in order.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
LIB = "_lib.sh"
STANDIN_PATH = "/usr/local/sbin"
CALLS = ".standin-calls"
STATE = ".standin-state"
FAIL = ".standin-fail"


def available() -> list[str]:
    """Every stand-in of this directory (a file without a dot or an underscore first)."""
    return sorted(
        p.name
        for p in HERE.iterdir()
        if p.is_file() and not p.name.startswith(("_", ".")) and p.suffix != ".py"
    )


class Host(Protocol):
    def bind_dir(self, mount_point: str) -> Path: ...


@dataclass(frozen=True)
class Call:
    """One recorded call: ``argv[0]`` is the tool's base name."""

    argv: list[str]
    stdin: bytes


def _dir(host: Host) -> Path:
    return host.bind_dir(STANDIN_PATH)


def install_standins(host: Host, names: Iterable[str] | None = None) -> list[str]:
    """Put the stand-ins ``names`` (default: all of them) first on ``host``'s PATH."""
    wanted = list(names) if names is not None else available()
    unknown = sorted(set(wanted) - set(available()))
    if unknown:
        raise ValueError(f"no stand-in for {', '.join(unknown)} in {HERE}")
    target = _dir(host)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / LIB, target / ".standin-lib")
    for name in wanted:
        shutil.copyfile(HERE / name, target / name)
        (target / name).chmod(0o755)
    return wanted


def install_recorder(host: Host, name: str, answer: str = "", exit_code: int = 0) -> None:
    """A stand-in for ``name`` that only records its calls, prints ``answer`` and exits with
    ``exit_code`` (for a tool without its own stand-in here)."""
    target = _dir(host)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / LIB, target / ".standin-lib")
    script = target / name
    printed = f"cat <<'STANDIN_ANSWER'\n{answer}\nSTANDIN_ANSWER\n" if answer else ""
    script.write_text(
        f'#!/bin/sh\n# Recording stand-in (tests/standins).\n. "$(dirname "$0")/.standin-lib"\n'
        f"{printed}exit {int(exit_code)}\n"
    )
    script.chmod(0o755)


def records(host: Host) -> list[Call]:
    """Every call the stand-ins on ``host`` recorded, in order."""
    path = _dir(host) / CALLS
    if not path.exists():
        return []
    data = path.read_bytes()
    found: list[Call] = []
    at = 0
    while at < len(data):
        end = data.index(b"\0", at)
        count = int(data[at:end])
        at = end + 1
        argv = []
        for _ in range(count):
            end = data.index(b"\0", at)
            argv.append(data[at:end].decode(errors="replace"))
            at = end + 1
        end = data.index(b"\0", at)
        length = int(data[at:end])
        at = end + 1
        stdin = data[at : at + length]
        at += length + 1  # the stdin and its closing NUL
        found.append(Call(argv, stdin))
    return found


def calls(host: Host, *tools: str) -> list[list[str]]:
    """The argv of every recorded call on ``host`` (only those of ``tools`` when given)."""
    return [c.argv for c in records(host) if not tools or c.argv[0] in tools]


def clear_calls(host: Host) -> None:
    """Forget the calls recorded so far (the state, such as installed packages, stays)."""
    (_dir(host) / CALLS).unlink(missing_ok=True)


def state(host: Host) -> Path:
    """The stand-ins' state directory on ``host`` (``pkg/<name>``, ``hold/<name>``, …)."""
    return _dir(host) / STATE


def make_fail(host: Host, tool: str, exit_code: int = 1, when_arg: str | None = None) -> None:
    """Make ``tool`` fail with ``exit_code`` (only calls with the argument ``when_arg``, when
    given) until :func:`stop_failing`."""
    directory = _dir(host) / FAIL
    directory.mkdir(parents=True, exist_ok=True)
    (directory / tool).write_text(f"{int(exit_code)}\n")
    match = directory / f"{tool}.match"
    if when_arg is None:
        match.unlink(missing_ok=True)
    else:
        match.write_text(when_arg)


def stop_failing(host: Host, tool: str) -> None:
    directory = _dir(host) / FAIL
    (directory / tool).unlink(missing_ok=True)
    (directory / f"{tool}.match").unlink(missing_ok=True)


def set_curl_answer(host: Host, url: str, exit_code: int, output: str = "") -> None:
    """Make the curl stand-in on ``host`` answer ``url`` with ``output`` and ``exit_code``."""
    directory = state(host) / "curl-answers"
    directory.mkdir(parents=True, exist_ok=True)
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in url)
    (directory / name).write_text(f"{int(exit_code)}\n{output}\n")
