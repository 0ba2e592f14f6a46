"""The soak test's task, loaded into its worker with ``--include``: record one number per run."""

from __future__ import annotations

import os

from celery import shared_task


@shared_task(name="tests.soak.record")
def record(number: int, path: str) -> None:
    # One short O_APPEND write per task: lines from both pool processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{number}\n".encode())
    finally:
        os.close(fd)
