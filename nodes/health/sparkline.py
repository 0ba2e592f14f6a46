"""Latency sparklines as inline SVG (no Django): a polyline scaled into a small box.

The page draws them server-side with SVG attributes only (no ``style``), so the
Content-Security-Policy, which allows no inline style or script, needs no exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

WIDTH = 120
HEIGHT = 24
PAD = 2


@dataclass(frozen=True)
class Sparkline:
    """What the template draws: the polyline's points, the last point, and a caption."""

    points: str  # "x,y x,y …" for <polyline points=…>
    last_x: float
    last_y: float
    count: int
    max_ms: float
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def label(self) -> str:
        return f"latency over the last 24 h: {self.count} samples, at most {self.max_ms:.0f} ms"


def sparkline(
    samples: Sequence[tuple[datetime, float]],
    start: datetime,
    end: datetime,
    *,
    samples_count: int | None = None,
) -> Sparkline | None:
    """``samples`` (time, latency in ms; one per bucket when the database reduced them) between
    ``start`` and ``end`` as a sparkline; ``samples_count`` is how many samples they stand for
    (default: one each). None without samples."""
    if not samples:
        return None
    span = max((end - start).total_seconds(), 1.0)
    highest = max(latency for _, latency in samples)
    top = highest or 1.0
    coords = []
    for at, latency in samples:
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * min(max(latency / top, 0.0), 1.0)
        coords.append((_x(at, start, span), round(y, 1)))
    if len(coords) == 1:  # one sample: a short flat stroke, so that something shows
        x, y = coords[0]
        coords = [(max(PAD, x - 2), y), (x, y)]
    points = " ".join(f"{x:g},{y:g}" for x, y in coords)
    return Sparkline(
        points=points,
        last_x=coords[-1][0],
        last_y=coords[-1][1],
        count=samples_count if samples_count is not None else len(samples),
        max_ms=highest,
    )


@lru_cache(maxsize=1024)
def _x(at: datetime, start: datetime, span: float) -> float:
    """A point's x: the same for every check of a round (the Health tab draws ~9,000 points at
    ~100 distinct times), so worked out once per time."""
    x = PAD + (WIDTH - 2 * PAD) * min(max((at - start).total_seconds() / span, 0.0), 1.0)
    return round(x, 1)
