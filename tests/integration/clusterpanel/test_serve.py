"""``manage.py serve`` for real: fresh data directory, first-run output, supervision, clean stop.

One run of the command on a free loopback port: the web server must keep answering while
its Celery worker is killed and started again, and SIGTERM must leave no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import services

# The command runs without DATABASE_URL (PANEL_VARIABLES), on the SQLite of its own data
# directory, whichever database the rest of the run uses.
pytestmark = [pytest.mark.integration, pytest.mark.no_database]

PANEL_VARIABLES = re.compile(r"^(CLUSTERPANEL_|DATABASE_URL$|REDIS_URL$|DJANGO_|XDG_RUNTIME_DIR$)")


def _processes() -> dict[int, tuple[int, str]]:
    """Every process as pid -> (parent pid, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if not cmdline:
            continue  # a zombie or a kernel thread
        # The command name is in parentheses and may hold spaces; the parent pid follows it.
        ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
        table[int(entry.name)] = (ppid, cmdline)
    return table


def _descendants(pid: int) -> set[int]:
    table = _processes()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _child(serve: int, marker: str) -> int | None:
    """The direct child of ``serve`` whose command line has ``marker``."""
    for pid, (ppid, cmdline) in _processes().items():
        if ppid == serve and marker in cmdline:
            return pid
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _healthz(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_serve_restarts_a_killed_worker_keeps_serving_and_stops_everything(
    tmp_path: Path,
) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not PANEL_VARIABLES.match(k)}
    env.update(CLUSTERPANEL_DATA_DIR=str(data), HOME=str(home), PYTHONPATH=str(services.ROOT))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--concurrency", "1"],
            cwd=services.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def worker_reported() -> bool:
            try:
                return _healthz(port)["worker"] == "ok"
            except OSError:
                return serve.poll() is not None

        services.wait_for(worker_reported, 120, "serve with a worker")
        assert serve.poll() is None, log.read_text()
        first_seen = _healthz(port)["worker_seen_at"]

        # First run: migrations, then the one-time password, framed, after all of them.
        lines = log.read_text().splitlines()
        applying = [i for i, line in enumerate(lines) if line.lstrip().startswith("Applying ")]
        borders = [i for i, line in enumerate(lines) if re.fullmatch(r"\+-{20,}\+", line)]
        assert applying and len(borders) == 2
        top, bottom = borders
        assert max(applying) < top
        box = "\n".join(lines[top : bottom + 1])
        assert re.search(r"\|\s+password: \S{16,}\s+\|", box)
        assert f"Back up {data / 'encryption.keys'} together with the database" in box
        assert all(line.startswith("|") for line in lines[top + 1 : bottom])

        # gunicorn's control socket is in the data directory, not under $HOME.
        assert stat.S_ISSOCK((data / "gunicorn.ctl").stat().st_mode)
        assert not (home / ".gunicorn").exists()

        worker = _child(serve.pid, "celery -A clusterpanel worker")
        assert worker is not None and _child(serve.pid, "gunicorn") is not None
        assert _child(serve.pid, "celery -A clusterpanel beat") is not None
        pool = _descendants(worker)
        assert pool, "the worker's pool processes"
        os.kill(worker, signal.SIGKILL)

        # The web server answers all along; a new worker replaces the killed one.
        deadline = time.monotonic() + 60
        replacement = None
        while time.monotonic() < deadline:
            assert _healthz(port)["status"] == "ok"
            replacement = _child(serve.pid, "celery -A clusterpanel worker")
            if replacement not in (None, worker):
                break
            time.sleep(0.2)
        assert replacement not in (None, worker), log.read_text()[-3000:]
        assert not _alive(worker) and not any(_alive(pid) for pid in pool)
        assert re.search(rf"worker \(pid {worker}\) was killed by SIGKILL after \d+ s; "
                         r"starting it again in 1 s", log.read_text())  # fmt: skip
        # ... and it works: it reports in through the broker and the database.
        services.wait_for(lambda: _healthz(port)["worker_seen_at"] != first_seen, 60,
                          "a heartbeat from the new worker")  # fmt: skip
        assert _healthz(port)["worker"] == "ok"

        # Files the children made are private to the user (serve runs with umask 077).
        for path in [*data.glob("celerybeat-schedule*"), *data.glob("clusterpanel.sqlite3*")]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

        everything = _descendants(serve.pid)
        assert len(everything) >= 5
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0, log.read_text()[-3000:]
        assert [pid for pid in everything if _alive(pid)] == []
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
