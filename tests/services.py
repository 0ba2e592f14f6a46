"""Start real services for tests: Redis and Celery workers, on loopback only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throwaway redis-server; yields its URL."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ping() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        wait_for(ping, 15, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


@contextmanager
def celery_worker(
    env: dict[str, str],
    name: str,
    log: Path,
    options: tuple[str, ...] = ("--pool", "solo", "--without-mingle", "--without-gossip"),
    include: tuple[str, ...] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery -A clusterpanel worker`` with the given environment; ``include`` names
    more modules it imports at start (test-only job kinds: ``tests.jobkinds``)."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    if include:
        options = (*options, "--include", ",".join(include))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "clusterpanel", "worker", "--loglevel", "INFO",
             "-n", f"{name}@%h", *options],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None, 60,
                     f"celery worker {name}")  # fmt: skip
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{log.read_text()[-3000:]}")
            yield process
        finally:
            _stop(process)


@contextmanager
def celery_beat(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery -A clusterpanel beat``; its schedule file is the settings' one."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "clusterpanel", "beat", "--loglevel", "INFO"],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(lambda: b"beat: Starting" in log.read_bytes() or process.poll() is not None,
                     60, "celery beat")  # fmt: skip
            if process.poll() is not None:
                raise RuntimeError(f"celery beat exited:\n{log.read_text()[-3000:]}")
            yield process
        finally:
            _stop(process)


def bootstrap_data_dir(env: dict[str, str]) -> None:
    """``manage.py bootstrap_data_dir`` for the data directory named in ``env``."""
    subprocess.run(
        [sys.executable, "manage.py", "bootstrap_data_dir"],
        cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; yields a DATABASE_URL."""
    data = workdir / "pgdata"
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    log = workdir / "postgres.log"
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start",
                      "-o", f"-c listen_addresses=127.0.0.1 -c port={port} "
                            f"-c unix_socket_directories={workdir} -c fsync=off"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
             "CREATE DATABASE clusterpanel"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield f"postgres://postgres@127.0.0.1:{port}/clusterpanel"
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )  # fmt: skip
