"""``manage.py serve``'s restart policy, on a real process that keeps failing.

The clock is passed in, so the pauses are checked without waiting for them.
"""

from __future__ import annotations

import sys
import time

from clusterpanel.management.commands.serve import HEALTHY_AFTER, Child


def _run_until_exit(child: Child, now: float) -> float:
    """Start the child at ``now``, let it exit, and return the pause before its next start."""
    child.check(now)
    assert child.process is not None
    while child.process is not None:
        time.sleep(0.01)
        child.check(now)
    return child.start_at - now


def test_a_failing_child_waits_twice_as_long_each_time_up_to_30_s_then_1_s_once_healthy() -> None:
    child = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"])
    now, pauses = 0.0, []
    for _ in range(7):
        pauses.append(_run_until_exit(child, now))
        now = child.start_at
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    # Up for longer than HEALTHY_AFTER before it failed: back to the first pause.
    child.check(now)
    assert child.process is not None
    later = now + HEALTHY_AFTER + 1
    while child.process is not None:
        time.sleep(0.01)
        child.check(later)
    assert child.start_at - later == 1
    # Not due yet: nothing starts.
    child.check(later + 0.5)
    assert child.process is None
