"""``manage.py bootstrap_data_dir``: create the data directory and what goes in it.

The one step that writes there before the panel runs (importing the settings writes
nothing): the directory (0700), the secret key and encryption key files and an empty
SQLite file (0600 each), the broker's folders and the static root, each only when the
environment does not provide it. Existing files are left as they are. ``manage.py``
runs the step before Django loads the settings, which need these files; this command
then reports what was made. ``manage.py serve`` runs it first.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from clusterpanel import datadir


class Command(BaseCommand):
    help = "Create the data directory, its key files and the empty database file if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        datadir.bootstrap()
        report = datadir.bootstrapped_in_this_process()
        for line in report.created:
            self.stdout.write(line)
        for line in report.warnings:
            self.stderr.write(f"Warning: {line}")
        if not report.created:
            self.stdout.write(
                f"The data directory {datadir.data_dir()} is ready; nothing to create."
            )
