"""When a renewal policy acts (no Django): whether leaves need renewal, and whether a moment is
inside the maintenance window.

A leaf needs renewal when less than ``days_before`` days are left, or when two thirds of its
lifetime (NotBefore to NotAfter) have passed: a short-lived leaf is renewed well before its last
days, as kubelet does with its own client certificate.

The window is a set of weekdays and a span of whole hours in a time zone (UTC unless the policy
names another, an IANA name such as ``Europe/Berlin``): from ``start_hour`` (inclusive) to
``end_hour`` (exclusive). An end at or before the start wraps past midnight, and the hours
after midnight belong to the day the window started on (Sunday 22-04 covers Monday 03:00, not
Monday 23:00). A start equal to the end is the whole day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_DAYS_BEFORE = 90
MAX_DAYS_BEFORE = 3650
LIFETIME_SHARE = 2 / 3


@dataclass(frozen=True)
class Leaf:
    """One certificate the panel issued: what it is called (for messages) and its validity."""

    name: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class Window:
    weekdays: frozenset[str]
    start_hour: int
    end_hour: int
    time_zone: str = "UTC"


def reason(leaf: Leaf, now: datetime, days_before: int) -> str | None:
    """Why ``leaf`` needs renewal at ``now`` (None when it does not)."""
    left = leaf.not_after - now
    if left < timedelta(days=days_before):
        return f"{leaf.name} has {max(left.days, 0)} day(s) left (renewal below {days_before})"
    lifetime = leaf.not_after - leaf.not_before
    if lifetime > timedelta(0) and now - leaf.not_before >= lifetime * LIFETIME_SHARE:
        return f"{leaf.name} has passed two thirds of its lifetime"
    return None


def due(leaves: Iterable[Leaf], now: datetime, days_before: int) -> str | None:
    """Why the leaves need renewal (the soonest-expiring leaf that does), or None."""
    for leaf in sorted(leaves, key=lambda item: (item.not_after, item.name)):
        found = reason(leaf, now, days_before)
        if found is not None:
            return found
    return None


def zone(name: str) -> ZoneInfo:
    """The time zone named ``name``; ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known time zone (an IANA name, e.g. UTC)") from None


def inside(window: Window, now: datetime) -> bool:
    """Whether ``now`` (aware) is inside ``window``."""
    local = now.astimezone(zone(window.time_zone))
    day = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    start, end, hour = window.start_hour, window.end_hour, local.hour
    if start == end:
        return day in window.weekdays
    if start < end:
        return day in window.weekdays and start <= hour < end
    if hour >= start:
        return day in window.weekdays
    return hour < end and yesterday in window.weekdays


def weekdays(value: object) -> list[str]:
    """A list of distinct day names (``mon`` … ``sun``), in week order; ValueError otherwise."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("weekdays must be a list of day names (mon, tue, … sun)")
    unknown = [v for v in value if v not in WEEKDAYS]
    if unknown:
        raise ValueError(f"not a day name: {', '.join(map(repr, unknown[:3]))} (use mon … sun)")
    if not value:
        raise ValueError("choose at least one weekday")
    return [day for day in WEEKDAYS if day in value]


def hour(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise ValueError(f"the {name} must be a whole hour from 0 to 23")
    return value


def describe(window: Window) -> str:
    """``mon, tue 02:00-06:00 UTC``: the window as the pages show it."""
    days = ", ".join(d for d in WEEKDAYS if d in window.weekdays)
    span = (
        "all day"
        if window.start_hour == window.end_hour
        else f"{window.start_hour:02d}:00-{window.end_hour:02d}:00"
    )
    return f"{days} {span} {window.time_zone}"


def as_window(days: Sequence[str], start_hour: int, end_hour: int, time_zone: str) -> Window:
    return Window(frozenset(days), start_hour, end_hour, time_zone)
