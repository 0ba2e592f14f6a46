"""Jobs run on a real Celery worker over a real Redis: claimed once, recorded step by step."""

from __future__ import annotations

import pytest

from clusterpanel.jobs import services as job_services
from clusterpanel.jobs.models import JobStatus, StepStatus
from clusterpanel.security.audit import Actor
from tests.factories import make_cluster, make_node, make_user
from tests.integration.clusterpanel.jobs.helpers import wait_status
from tests.jobkinds import SHELL

pytestmark = pytest.mark.django_db(transaction=True)


def operator() -> Actor:
    return Actor(user=make_user("op", "operator"), client_ip="127.0.0.1", via="api")


def test_a_job_runs_its_steps_in_order_and_succeeds(jobs_worker: str) -> None:
    cluster = make_cluster("prod")
    make_node(cluster, name="cp-1")
    params = {
        "phases": [
            {"name": "gather", "steps": [
                {"name": "hello", "node": "cp-1", "command": "echo one; echo two >&2; echo three"},
                {"name": "cross", "node": None, "command": "printf 'x%.0s' $(seq 100)"},
            ]},
            {"name": "verdict", "steps": [{"name": "last", "node": "cp-1", "command": "exit 0"}]},
        ]
    }  # fmt: skip
    job = job_services.launch_job(operator(), cluster.pk, SHELL, params=params)
    wait_status(job, *JobStatus.values[2:])
    assert job.status == JobStatus.SUCCEEDED, job.explanation
    assert job.explanation == "all 3 steps succeeded"
    rows = list(job.steps.order_by("position"))
    assert [(s.phase, s.name, s.node_name, s.status, s.exit_code) for s in rows] == [
        ("gather", "hello", "cp-1", StepStatus.SUCCEEDED, 0),
        ("gather", "cross", "", StepStatus.SUCCEEDED, 0),
        ("verdict", "last", "cp-1", StepStatus.SUCCEEDED, 0),
    ]
    assert rows[0].node_id is not None and rows[0].stdout_bytes == 10 and rows[0].stderr_bytes == 4
    chunks = list(job.chunks.order_by("seq"))
    seqs = [c.seq for c in chunks]
    assert seqs == sorted(set(seqs))
    stdout = "".join(c.text for c in chunks if c.step_id == rows[0].pk and c.stream == "stdout")
    assert stdout == "one\nthree\n"
    assert "".join(c.text for c in chunks if c.step_id == rows[1].pk) == "x" * 100
    assert job.started_at and job.finished_at and job.heartbeat_at
