"""Jobs run on a real Celery worker over a real Redis: claimed once, recorded step by step."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.jobs import services as job_services
from clusterpanel.jobs.models import Job, JobStatus, StepStatus
from clusterpanel.jobs.tasks import dispatch, reap_jobs
from clusterpanel.security.audit import Actor
from tests import services
from tests.factories import make_cluster, make_node, make_user
from tests.integration.clusterpanel.jobs.helpers import steps, wait_status
from tests.jobkinds import READ_ONLY, SHELL
from tests.real_services import FAST, broker, broker_db

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


def test_two_concurrent_mutating_launches_give_one_201_and_one_409(
    api_client: Any, jobs_worker: str
) -> None:
    cluster = make_cluster("prod")
    body = {"cluster": cluster.pk, "kind": SHELL, "params": steps(("nap", None, "sleep 1"))}
    user = make_user("op", "operator")
    answers: list[Any] = []
    start = threading.Barrier(2)

    def post() -> None:
        client = api_client(None)
        client.force_authenticate(user)
        start.wait()
        answers.append(client.post("/api/v1/jobs/", body, format="json"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409], [a.json() for a in answers]
    winner = next(a for a in answers if a.status_code == 201).json()["id"]
    loser = next(a for a in answers if a.status_code == 409).json()["detail"]
    assert f"Job #{winner} ({SHELL}) is" in loser and "on cluster prod" in loser
    assert Job.objects.count() == 1
    wait_status(Job.objects.get(), JobStatus.SUCCEEDED)


def test_a_read_only_job_runs_beside_a_mutating_one(jobs_worker: str) -> None:
    cluster = make_cluster("prod")
    slow = job_services.launch_job(operator(), cluster.pk, SHELL,
                                   params=steps(("long", None, "sleep 3")))  # fmt: skip
    wait_status(slow, JobStatus.RUNNING)
    quick = job_services.launch_job(Actor(slow.launched_by, None, "api"), cluster.pk, READ_ONLY,
                                    params=steps(("look", None, "echo hi")))  # fmt: skip
    wait_status(quick, JobStatus.SUCCEEDED)
    slow.refresh_from_db()
    assert slow.status == JobStatus.RUNNING  # the read-only job ended while it still ran
    wait_status(slow, JobStatus.SUCCEEDED)


def test_a_duplicated_task_message_runs_the_job_once(jobs_worker: str) -> None:
    cluster = make_cluster("prod")
    job = job_services.launch_job(operator(), cluster.pk, READ_ONLY,
                                  params=steps(("once", None, "echo ran")))  # fmt: skip
    dispatch(job)  # the same message again, as a broker redelivery would
    dispatch(job)
    wait_status(job, JobStatus.SUCCEEDED)
    time.sleep(1.5)  # time for the duplicates to be consumed
    assert job.steps.count() == 1
    assert "".join(job.chunks.values_list("text", flat=True)) == "ran\n"


def test_a_running_job_is_cancelled_at_its_next_heartbeat(jobs_worker: str) -> None:
    cluster = make_cluster("prod")
    params = steps(("nap", None, "sleep 20"), phase="one")
    params["phases"].append({"name": "two", "steps": [{"name": "after", "node": None}]})
    job = job_services.launch_job(operator(), cluster.pk, SHELL, params=params)
    services.wait_for(lambda: job.steps.filter(status="running").exists(), 30, "the step to run")
    admin = Actor(make_user("boss", "admin"), None, "web")
    job_services.cancel_job(admin, job)
    wait_status(job, JobStatus.CANCELLED, timeout=15)
    assert job.explanation == "cancelled by boss during one/nap; 1 step did not run"
    assert job.steps.get(name="after").status == StepStatus.CANCELLED


def test_a_retry_skips_the_steps_that_succeeded(jobs_worker: str, tmp_path: Path) -> None:
    cluster = make_cluster("prod")
    marker = tmp_path / "fixed"
    params = {
        "phases": [
            {"name": "one", "steps": [{"name": "first", "node": None,
                                        "command": f"echo first >> {tmp_path}/runs"}]},
            {"name": "two", "steps": [{"name": "flaky", "node": None,
                                        "command": f"test -e {marker}"}]},
        ]
    }  # fmt: skip
    first = job_services.launch_job(operator(), cluster.pk, SHELL, params=params)
    wait_status(first, JobStatus.FAILED)
    assert first.steps.get(name="flaky").exit_code == 1
    marker.touch()
    second = job_services.retry_job(Actor(first.launched_by, None, "api"), first)
    wait_status(second, JobStatus.SUCCEEDED)
    assert (tmp_path / "runs").read_text() == "first\n"  # ran once, in the first attempt
    reused = second.steps.get(name="first")
    assert reused.status == StepStatus.SKIPPED and "earlier attempt" in reused.message
    assert second.steps.get(name="flaky").status == StepStatus.SUCCEEDED


def test_a_steps_output_keeps_its_head_and_tail_with_exact_counts(jobs_worker: str) -> None:
    cluster = make_cluster("prod")
    # 300,000 bytes of 10-byte lines, then (once they are read) a last line on stderr.
    command = "yes 123456789 | head -c 300000; sleep 0.5; echo tail-end >&2"
    job = job_services.launch_job(operator(), cluster.pk, READ_ONLY,
                                  params=steps(("loud", None, command)))  # fmt: skip
    wait_status(job, JobStatus.SUCCEEDED, timeout=60)
    step = job.steps.get()
    kept = 64 * 1024
    assert step.stdout_bytes == 300000 and step.stderr_bytes == 9
    assert step.dropped_bytes == 300009 - 2 * kept
    chunks = list(job.chunks.order_by("seq"))
    text = "".join(c.text for c in chunks)
    marker = f"… {300009 - 2 * kept} bytes omitted …\n"
    head, _, tail = text.partition(marker)
    assert len(head.encode()) == kept and len(tail.encode()) == kept
    assert tail.endswith("tail-end\n") and head.startswith("123456789\n")
    assert len(chunks) < 40  # coalesced, not one row per read


def test_an_exception_in_a_kind_ends_the_job_errored_with_the_traceback_kept(
    jobs_worker: str,
) -> None:
    cluster = make_cluster("prod")
    job = job_services.launch_job(operator(), cluster.pk, READ_ONLY, params={"raise": True})
    wait_status(job, JobStatus.ERRORED)
    assert job.explanation == (
        "the job hit an internal error: ValueError; the traceback is kept for administrators"
    )
    assert "a bug in the kind" in job.traceback


def test_a_killed_worker_leaves_its_job_to_the_reaper(
    redis_url: str, worker_env: dict[str, str], tmp_path: Path, settings: Any
) -> None:
    """A dedicated worker on a Redis database of its own is killed (SIGKILL) mid-step; the
    reaper, run as beat would run it, ends the job errored and fails the step that ran."""
    url = broker_db(redis_url, 3)
    env = {**worker_env, **FAST, "REDIS_URL": url}
    cluster = make_cluster("prod")
    with services.celery_worker(env, "doomed", tmp_path / "worker.log",
                                include=("tests.jobkinds",)) as process, broker(url):  # fmt: skip
        job = job_services.launch_job(operator(), cluster.pk, SHELL,
                                      params=steps(("long", None, "sleep 8")))  # fmt: skip
        services.wait_for(lambda: job.steps.filter(status="running").exists(), 30, "the step")
        process.kill()
        process.wait()
    settings.CLUSTERPANEL_JOB_HEARTBEAT_TIMEOUT = 2
    time.sleep(2.5)
    assert reap_jobs.apply().get() == {"reaped": 1, "redispatched": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.ERRORED
    assert job.explanation.startswith("the worker running this job was lost (no heartbeat for ")
    assert job.explanation.endswith(" s); steps that were running are marked failed")
    assert job.steps.get().status == StepStatus.FAILED
