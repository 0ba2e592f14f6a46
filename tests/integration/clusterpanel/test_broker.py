"""The embedded broker (clusterpanel/broker.py) with real processes on real folders.

kombu's own filesystem transport fails the first test: its reader takes a message file
that another process is still writing and raises JSONDecodeError.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import kombu
import pytest

from clusterpanel import broker
from tests import services

pytestmark = [pytest.mark.integration, pytest.mark.no_database]  # the broker is files only

URL = f"{broker.SCHEME}://localhost//"


def _options(root: Path) -> dict[str, str]:
    return {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "control_folder": str(root / "control"),
    }


def _run(script: str, root: Path, *args: str) -> subprocess.Popen[str]:
    """``script`` in a fresh interpreter with ``options`` bound to the broker under ``root``."""
    prelude = (
        f"import sys, kombu, clusterpanel.broker\noptions = {_options(root)!r}\nURL = {URL!r}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", prelude + script, *args],
        cwd=services.ROOT,
        env={**os.environ, "PYTHONPATH": str(services.ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[kombu.Connection]:
    with kombu.Connection(URL, transport_options=_options(tmp_path)) as conn:
        yield conn


WRITER = """
count, size = int(sys.argv[1]), int(sys.argv[2])
with kombu.Connection(URL, transport_options=options) as conn:
    queue = conn.SimpleQueue("big")
    for number in range(count):
        queue.put({"number": number, "filler": "x" * size})
"""


def test_a_reader_never_gets_a_message_that_is_still_being_written(
    tmp_path: Path, connection: kombu.Connection
) -> None:
    # Megabyte messages take long enough to write that an early reader would catch one
    # half-way; the consumer keeps reading while the writer writes.
    count, size = 150, 1 << 20
    writer = _run(WRITER, tmp_path, str(count), str(size))
    queue = connection.SimpleQueue("big")
    numbers = []
    while len(numbers) < count:
        message = queue.get(timeout=60)
        assert len(message.payload["filler"]) == size
        numbers.append(message.payload["number"])
        message.ack()
    assert writer.wait(timeout=60) == 0
    assert numbers == list(range(count))
    assert list((tmp_path / "quarantine").iterdir()) == []


def test_a_file_that_is_not_a_message_is_quarantined_and_the_next_one_delivered(
    tmp_path: Path, connection: kombu.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    queue = connection.SimpleQueue("jobs")
    bad = {
        "00000000000000000001_a.jobs.msg": b'{"body": "eyJh',  # cut short
        "00000000000000000002_b.jobs.msg": b"",
        "00000000000000000003_c.jobs.msg": b"[1, 2, 3]",
        "00000000000000000004_d.jobs.msg": b'{"body": "x", "properties": {}}',
    }
    for name, content in bad.items():
        (tmp_path / "queue" / name).write_bytes(content)
    queue.put({"job": 7})
    with caplog.at_level(logging.ERROR, logger="clusterpanel.broker"):
        message = queue.get(timeout=10)
    assert message.payload == {"job": 7}
    message.ack()
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == sorted(bad)
    assert list((tmp_path / "queue").iterdir()) == []
    for name in bad:
        assert any(name in record.getMessage() for record in caplog.records), name
    with pytest.raises(queue.Empty):
        queue.get(timeout=0.5)


CLAIMER = """
with kombu.Connection(URL, transport_options=options) as conn:
    queue = conn.SimpleQueue("jobs")
    message = queue.get(timeout=30)
    print(message.payload["job"], flush=True)
    __import__("time").sleep(600)  # never acknowledges: killed here
"""


def test_a_message_whose_reader_was_killed_before_acknowledging_is_delivered_again(
    tmp_path: Path, connection: kombu.Connection
) -> None:
    queue = connection.SimpleQueue("jobs")
    queue.put({"job": 42})
    reader = _run(CLAIMER, tmp_path)
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "42"  # taken, not acknowledged
    assert list((tmp_path / "queue").iterdir()) == []
    claimed = list((tmp_path / "unacked").rglob("*.msg"))
    assert len(claimed) == 1
    os.kill(reader.pid, signal.SIGKILL)
    reader.wait(timeout=10)
    # The next reader to start finds the dead reader's claim and puts it back.
    with kombu.Connection(URL, transport_options=_options(tmp_path)) as fresh:
        message = fresh.SimpleQueue("jobs").get(timeout=10)
        assert message.payload == {"job": 42}
        message.ack()
    assert list((tmp_path / "unacked").rglob("*.msg")) == []
    assert list((tmp_path / "queue").iterdir()) == []


def test_an_acknowledgement_from_another_thread_wakes_the_consumer(
    connection: kombu.Connection,
) -> None:
    """With a prefetch of one the consumer waits for a free slot; the ack frees it at once."""
    queue = connection.SimpleQueue("jobs")
    queue.consumer.qos(prefetch_count=1)
    for job in range(2):
        queue.put({"job": job})
    first = queue.get(timeout=10)
    timer = threading.Timer(0.05, first.ack)
    timer.start()
    transport = connection.transport
    transport.polling_interval = 30.0  # without the wake-up the second get would wait this long
    second = queue.get(timeout=5)
    assert second.payload == {"job": 1}
    second.ack()
    timer.join()


def test_messages_come_out_in_the_order_they_were_written(connection: kombu.Connection) -> None:
    queue = connection.SimpleQueue("jobs")
    for job in range(50):
        queue.put({"job": job})
    got = []
    for _ in range(50):
        message = queue.get(timeout=5)
        got.append(message.payload["job"])
        message.ack()
    assert got == list(range(50))
