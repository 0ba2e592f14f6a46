"""10,000 tasks through a real worker and beat on the embedded filesystem broker.

Two producer processes (standing in for the web server) publish while the worker, with
two pool processes, consumes and beat publishes its heartbeats: readers and writers race
on the queue folder the whole time, which is how kombu's own filesystem transport handed a
half-written message file to the worker (``Unrecoverable error: JSONDecodeError``).
Every task writes its number to a file; each number must be there exactly once, the worker
must still be running, and nothing may be left queued, unacknowledged or quarantined.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from clusterpanel.models import WorkerHeartbeat
from tests import services

# The embedded broker is the SQLite default's: SQLite pass only (tests/run.py).
pytestmark = [pytest.mark.integration, pytest.mark.above_the_database]

TASKS = 10_000
PRODUCERS = 2

PRODUCER = """
import sys
import django
django.setup()
from clusterpanel.celery import app
first, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with app.producer_or_acquire() as producer:
    for number in range(first, first + count):
        app.send_task("tests.soak.record", args=[number, path], producer=producer)
"""


@pytest.mark.django_db(transaction=True)
def test_ten_thousand_tasks_arrive_once_each_and_the_worker_survives(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    # Its own data directory, so its own broker folders; the test database for heartbeats.
    env = {**worker_env, "CLUSTERPANEL_DATA_DIR": str(data)}
    services.bootstrap_data_dir(env)
    record = tmp_path / "record.txt"
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    WorkerHeartbeat.objects.all().delete()
    options = ("--concurrency", "2", "--include", "tests.integration.clusterpanel.soak_tasks")
    with (
        services.celery_worker(env, "soak", worker_log, options) as worker,
        services.celery_beat(env, beat_log) as beat,
    ):
        started = time.monotonic()
        share = TASKS // PRODUCERS
        producers = [
            subprocess.Popen(
                [sys.executable, "-c", PRODUCER, str(i * share), str(share), str(record)],
                cwd=services.ROOT,
                env={**os.environ, **env, "PYTHONPATH": str(services.ROOT)},
            )
            for i in range(PRODUCERS)
        ]
        for producer in producers:
            assert producer.wait(timeout=300) == 0
        sent = time.monotonic() - started

        def done() -> bool:
            return record.exists() and record.read_bytes().count(b"\n") >= TASKS

        services.wait_for(done, 300, f"{TASKS} recorded tasks")
        elapsed = time.monotonic() - started
        # Anything still arriving would be a duplicate.
        time.sleep(2)
        assert worker.poll() is None, worker_log.read_text()[-3000:]
        assert beat.poll() is None, beat_log.read_text()[-3000:]
    counts = Counter(int(line) for line in record.read_text().split())
    assert set(counts) == set(range(TASKS))
    assert [n for n, c in counts.items() if c > 1] == []
    log = worker_log.read_text()
    assert "Unrecoverable error" not in log and "Traceback" not in log, log[-3000:]
    broker = data / "broker"
    assert [p.name for p in (broker / "queue").iterdir()] == []
    assert [p.name for p in (broker / "quarantine").iterdir()] == []
    assert [p for p in (broker / "unacked").rglob("*.msg")] == []
    # Beat's heartbeats went through the same folders and the worker ran them.
    assert WorkerHeartbeat.objects.filter(hostname__startswith="soak@").exists()
    print(f"\n{TASKS} tasks: sent in {sent:.1f} s, all run after {elapsed:.1f} s")
