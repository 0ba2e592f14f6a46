"""Small builders for the jobs tests."""

from __future__ import annotations

from typing import Any

from clusterpanel.jobs.models import Job
from tests import services


def steps(*specs: tuple[str, str | None, str], phase: str = "main") -> dict[str, Any]:
    """Params of one phase with ``(name, node, command)`` steps."""
    return {
        "phases": [
            {"name": phase, "steps": [{"name": n, "node": d, "command": c} for n, d, c in specs]}
        ]
    }


def wait_status(job: Job, *statuses: str, timeout: float = 30) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.status in statuses

    services.wait_for(ended, timeout, f"{job} to be {'/'.join(statuses)} (is {job.status})")
    return job
