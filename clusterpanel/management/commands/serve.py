"""``manage.py serve``: run the whole panel — web server, Celery worker and beat.

Bootstraps the data directory first (manage.py does that before Django loads the
settings, see clusterpanel/datadir.py), migrates and creates the first admin
account on first run. On the
embedded default everything (SQLite, broker files, keys) lives under
CLUSTERPANEL_DATA_DIR; with DATABASE_URL and REDIS_URL set it uses those.
Stops all three processes when one of them exits or on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from clusterpanel import datadir


class Command(BaseCommand):
    help = "Migrate, create the first admin, then run gunicorn, a Celery worker and Celery beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000", help="host:port for the web server")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")

    def handle(self, *args: Any, **options: Any) -> None:
        datadir.bootstrap()  # manage.py already did; this covers call_command("serve")
        report = datadir.bootstrapped_in_this_process()
        for line in report.created:
            self.stdout.write(line)
        for line in report.warnings:
            self.stderr.write(f"Warning: {line}")
        call_command("migrate", interactive=False, verbosity=1)
        call_command("ensure_admin")
        python = sys.executable
        data = settings.DATA_DIR
        commands = {
            "web": [
                python, "-m", "gunicorn", "clusterpanel.wsgi:application",
                "--bind", options["bind"], "--workers", str(options["workers"]),
                "--access-logfile", "-",
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
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}
        self.stdout.write(f"clusterpanel is running on http://{options['bind']}/ (Ctrl-C stops it)")
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                exited = [name for name, proc in processes.items() if proc.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} stopped; stopping the rest")
                    break
                time.sleep(0.5)
        finally:
            for proc in processes.values():
                if proc.poll() is None:
                    proc.terminate()
            for proc in processes.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
