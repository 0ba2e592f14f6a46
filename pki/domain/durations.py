"""Go durations (``time.ParseDuration``), as kubeadm's ``--ttl`` and cfssl's ``expiry`` take them.

One parser for every duration the panel reads, exact (decimal arithmetic, not floats) and bounded
like Go's: a ``time.Duration`` is an int64 of nanoseconds, so nothing longer than about 2562047h
exists for kubeadm or cfssl, and a longer value is refused instead of overflowing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

MAX_NANOSECONDS = 2**63 - 1
# The longest duration Go can hold, to the microsecond (what a timedelta keeps).
MAX_DURATION = timedelta(microseconds=MAX_NANOSECONDS // 1000)
MAX_TEXT = "2562047h"

_UNITS = {
    "ns": Decimal(1),
    "us": Decimal(1000),
    "\u00b5s": Decimal(1000),  # micro sign, as Go accepts it
    "\u03bcs": Decimal(1000),  # Greek small letter mu
    "ms": Decimal(10**6),
    "s": Decimal(10**9),
    "m": Decimal(60 * 10**9),
    "h": Decimal(3600 * 10**9),
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class DurationError(ValueError):
    """Not a Go duration (``bad syntax``), or one Go cannot hold (``out of range``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_go_duration(text: str) -> timedelta:
    """The duration ``text`` stands for, signed; ``DurationError`` as Go's ParseDuration fails.

    ``0`` alone needs no unit; every other part is a decimal number and a unit (``1h30m``,
    ``1.5h``, ``90s``). The result is truncated to microseconds.
    """
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value[:1] in ("+", "-") else value
    if body == "0":
        return timedelta(0)
    if not body:
        raise DurationError("bad syntax")
    total = Decimal(0)
    position = 0
    while position < len(body):
        match = _PART.match(body, position)
        if match is None:
            raise DurationError("bad syntax")
        total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        if total > MAX_NANOSECONDS:
            raise DurationError("out of range")
        position = match.end()
    return sign * timedelta(microseconds=int(total) // 1000)
