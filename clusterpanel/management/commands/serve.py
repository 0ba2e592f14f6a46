"""``manage.py serve``: run the whole panel — web server, Celery worker and beat.

First the data directory is bootstrapped (``manage.py`` does that before Django loads
the settings, see clusterpanel/datadir.py), migrations are applied and, on the first
run, an admin account is created; its one-time password is printed last, in a box.

Then gunicorn, a Celery worker and Celery beat run under supervision: a process that
exits is logged and started again after a pause of 1 s, doubling up to 30 s while it
keeps failing and back to 1 s once it has stayed up for a minute. The others keep
serving meanwhile. Ctrl-C or SIGTERM stops all three; each runs in its own process
group, which is emptied when it stops, and gets SIGTERM should ``serve`` itself die.

On the embedded default everything (SQLite, broker files, keys, gunicorn's control
socket) lives under CLUSTERPANEL_DATA_DIR and is created private to the user (umask
077); with DATABASE_URL and REDIS_URL set it uses those.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from clusterpanel import datadir

logger = logging.getLogger("clusterpanel.serve")

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0
# A process that stayed up this long was healthy: its next restart comes after FIRST_PAUSE.
HEALTHY_AFTER = 60.0
STOP_TIMEOUT = 20.0
TICK = 0.2


def _stop_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send SIGTERM to this child when ``serve`` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it: its process group stays reserved."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    """Whatever is left of a child's process group (a killed worker's pool processes)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE
    start_at: float = 0.0

    def start(self, now: float) -> None:
        self.started_at = now
        try:
            self.process = subprocess.Popen(
                self.command, process_group=0, preexec_fn=_stop_with_parent
            )
        except OSError as exc:
            self.start_at = self.started_at + self.pause
            logger.error("%s could not start (%s); trying again in %.0f s",
                         self.name, exc, self.pause)  # fmt: skip
            self.pause = min(self.pause * 2, LONGEST_PAUSE)
            return
        logger.info("%s started (pid %d)", self.name, self.process.pid)

    def reap(self) -> int:
        """Empty the exited child's process group, then collect its status."""
        assert self.process is not None
        _kill_group(self.process.pid)
        returncode = self.process.wait()
        self.process = None
        return returncode

    def check(self, now: float) -> None:
        """Start the child when it is due; notice when it has exited and plan its restart."""
        if self.process is None:
            if now >= self.start_at:
                self.start(now)
            return
        if not _exited(self.process.pid):
            return
        pid, uptime = self.process.pid, now - self.started_at
        returncode = self.reap()
        if uptime >= HEALTHY_AFTER:
            self.pause = FIRST_PAUSE
        self.start_at = now + self.pause
        logger.error("%s (pid %d) %s after %.0f s; starting it again in %.0f s",
                     self.name, pid, _describe(returncode), uptime, self.pause)  # fmt: skip
        self.pause = min(self.pause * 2, LONGEST_PAUSE)

    def terminate(self) -> None:
        if self.process is not None and not _exited(self.process.pid):
            self.process.terminate()


def stop_all(children: list[Child]) -> None:
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    running = [child for child in children if child.process is not None]
    while running and time.monotonic() < deadline:
        running = [c for c in running if c.process is not None and not _exited(c.process.pid)]
        time.sleep(TICK)
    for child in running:
        logger.warning("%s did not stop within %.0f s; killing it", child.name, STOP_TIMEOUT)
    for child in children:
        if child.process is not None:
            child.reap()


class Command(BaseCommand):
    help = (
        "Migrate, create the first admin, then run gunicorn, a Celery worker and beat, supervised."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        # Everything written from here on (database journals, broker files, beat's schedule,
        # the control socket) is private to this user.
        os.umask(0o077)
        datadir.bootstrap()  # manage.py already did; this covers call_command("serve")
        report = datadir.bootstrapped_in_this_process()
        for line in report.created:
            self.stdout.write(line)
        for line in report.warnings:
            self.stderr.write(f"Warning: {line}")
        call_command("migrate", interactive=False, verbosity=1)
        self.stdout.write(
            f"Starting clusterpanel on http://{options['bind']}/ with a Celery worker and beat "
            "(Ctrl-C stops them)."
        )
        # Last, so that the one-time password is not lost among the lines above.
        call_command("ensure_admin")
        connections.close_all()
        self.stdout.flush()

        stopping = False

        def stop(signum: int, _frame: Any) -> None:
            nonlocal stopping
            if not stopping:
                logger.info("%s: stopping the web server, worker and beat",
                            signal.Signals(signum).name)  # fmt: skip
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        children = [Child(name, command) for name, command in self.commands(options).items()]
        try:
            while not stopping:
                now = time.monotonic()
                for child in children:
                    if not stopping:
                        child.check(now)
                time.sleep(TICK)
        finally:
            stop_all(children)

    def commands(self, options: dict[str, Any]) -> dict[str, list[str]]:
        python = sys.executable
        data = settings.DATA_DIR
        return {
            "web": [
                python, "-m", "gunicorn", "clusterpanel.wsgi:application",
                "--bind", options["bind"], "--workers", str(options["workers"]),
                "--access-logfile", "-",
                # gunicorn's default is under $HOME, shared by every instance of the user.
                "--control-socket", str(data / "gunicorn.ctl"),
            ],
            "worker": [
                python, "-m", "celery", "-A", "clusterpanel", "worker",
                "--loglevel", "INFO", "--concurrency", str(options["concurrency"]),
            ],
            # The schedule file comes from CELERY_BEAT_SCHEDULE_FILENAME.
            "beat": [
                python, "-m", "celery", "-A", "clusterpanel", "beat", "--loglevel", "INFO",
                "--pidfile", str(data / "celerybeat.pid"),
            ],
        }  # fmt: skip
