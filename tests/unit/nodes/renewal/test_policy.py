"""The renewal policy's pure decisions: when leaves are due, and when a moment is inside the
maintenance window (week wrap, the end hour, time zones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nodes.renewal import policy
from nodes.renewal.policy import Leaf, Window

START = datetime(2030, 1, 1, tzinfo=UTC)


def _leaf(days: int, name: str = "apiserver") -> Leaf:
    return Leaf(name, START, START + timedelta(days=days))


def test_fewer_days_left_than_the_threshold_is_due() -> None:
    leaf = _leaf(200)  # two thirds of 200 days leave 66 days: the 90-day rule comes first
    expiry = leaf.not_after
    assert policy.reason(leaf, expiry - timedelta(days=90), 90) is None  # exactly 90: not yet
    found = policy.reason(leaf, expiry - timedelta(days=90, seconds=-1), 90)
    assert found is not None and "89 day(s) left" in found
    assert "0 day(s)" in (policy.reason(leaf, expiry + timedelta(days=3), 90) or "")


def test_two_thirds_of_the_lifetime_is_due_even_with_many_days_left() -> None:
    leaf = _leaf(3000)  # two thirds: day 2000, when 1000 days are still left
    assert policy.reason(leaf, START + timedelta(days=1999, hours=23), 90) is None
    assert "two thirds" in (policy.reason(leaf, START + timedelta(days=2000), 90) or "")
    # A zero-length lifetime (an odd import) is judged by its days left only.
    assert policy.reason(Leaf("odd", START, START), START - timedelta(days=400), 90) is None


def test_due_names_the_soonest_leaf_that_needs_renewal() -> None:
    leaves = [_leaf(400, "late"), _leaf(100, "soon"), _leaf(365, "mid")]
    assert policy.due(leaves, START + timedelta(days=5), 90) is None
    found = policy.due(leaves, START + timedelta(days=20), 90)
    assert found is not None and found.startswith("soon ")
    assert policy.due([], START, 90) is None


WEEKDAY_NIGHT = Window(frozenset({"mon", "tue", "wed", "thu", "fri"}), 2, 6)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2030-01-07 01:59", False),  # Monday, before the start
        ("2030-01-07 02:00", True),  # the start hour is inside
        ("2030-01-07 05:59", True),
        ("2030-01-07 06:00", False),  # the end hour is not
        ("2030-01-12 03:00", False),  # Saturday
    ],
)
def test_a_window_within_a_day(moment: str, inside: bool) -> None:
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert policy.inside(WEEKDAY_NIGHT, at) is inside


SUNDAY_NIGHT = Window(frozenset({"sun"}), 22, 4)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("2030-01-06 21:59", False),  # Sunday before 22:00
        ("2030-01-06 22:00", True),
        ("2030-01-06 23:59", True),
        ("2030-01-07 00:00", True),  # Monday after midnight: still Sunday's window (week wrap)
        ("2030-01-07 03:59", True),
        ("2030-01-07 04:00", False),  # the end hour
        ("2030-01-07 22:30", False),  # Monday night is not a window day
        ("2030-01-05 23:00", False),  # Saturday night
        ("2030-01-06 02:00", False),  # Sunday 02:00 belongs to Saturday's window: none
    ],
)
def test_a_window_past_midnight_wraps_into_the_next_day_and_week(moment: str, inside: bool) -> None:
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert policy.inside(SUNDAY_NIGHT, at) is inside


def test_a_window_whose_start_equals_its_end_is_the_whole_day() -> None:
    window = Window(frozenset({"sat"}), 0, 0)
    assert policy.inside(window, datetime(2030, 1, 5, 0, 0, tzinfo=UTC))
    assert policy.inside(window, datetime(2030, 1, 5, 23, 59, tzinfo=UTC))
    assert not policy.inside(window, datetime(2030, 1, 6, 0, 0, tzinfo=UTC))


def test_the_hours_are_read_in_the_windows_time_zone() -> None:
    berlin = Window(frozenset({"mon"}), 2, 4, "Europe/Berlin")  # UTC+1 in January
    assert policy.inside(berlin, datetime(2030, 1, 7, 1, 30, tzinfo=UTC))  # 02:30 in Berlin
    assert not policy.inside(berlin, datetime(2030, 1, 7, 3, 30, tzinfo=UTC))  # 04:30 there
    # Sunday 17:30 UTC is Monday 02:30 in Tokyo: the local weekday counts, not UTC's.
    tokyo = Window(frozenset({"mon"}), 2, 4, "Asia/Tokyo")
    assert policy.inside(tokyo, datetime(2030, 1, 6, 17, 30, tzinfo=UTC))
    assert policy.describe(berlin) == "mon 02:00-04:00 Europe/Berlin"


def test_inputs_are_refused_by_what_is_wrong() -> None:
    assert policy.weekdays(["fri", "mon"]) == ["mon", "fri"]
    for bad, why in (
        ([], "at least one"),
        (["monday"], "not a day"),
        ("mon", "list"),
        ([1], "list"),
    ):
        with pytest.raises(ValueError, match=why):
            policy.weekdays(bad)
    with pytest.raises(ValueError, match="0 to 23"):
        policy.hour(24, "start hour")
    with pytest.raises(ValueError, match="0 to 23"):
        policy.hour(True, "start hour")
    with pytest.raises(ValueError, match="time zone"):
        policy.zone("Mars/Olympus")
    with pytest.raises(ValueError, match="time zone"):
        policy.zone("../etc/passwd")
