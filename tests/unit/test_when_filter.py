"""The pages' timestamps: relative and absolute together, in UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import engines

from clusterpanel.templatetags.when import relative, when, when_exact

NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (NOW - dt.timedelta(hours=3, minutes=20), "3 hours ago"),
        (NOW + dt.timedelta(days=2, hours=5), "in 2 days"),
        (NOW - dt.timedelta(seconds=20), "just now"),
        (NOW + dt.timedelta(seconds=59), "just now"),
        (NOW - dt.timedelta(days=400), "1 year ago"),
    ],
)
def test_relative_part_uses_the_largest_unit(moment: dt.datetime, expected: str) -> None:
    assert relative(moment, NOW) == expected


def test_absolute_part_is_utc_whatever_the_zone_of_the_value() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 12, 2, 8, 30, 15, tzinfo=berlin)
    html = when(moment, NOW)
    assert html == (
        '<span class="when">2 hours ago <time class="muted" '
        'datetime="2026-12-02T07:30:15+00:00">2026-12-02 07:30 UTC</time></span>'
    )
    assert "07:30:15 UTC</time>" in when_exact(moment, NOW)


def test_empty_value_is_a_dash_and_the_filter_is_a_builtin() -> None:
    rendered = (
        engines["django"]
        .from_string("{{ a|when:now }}|{{ b|when }}")
        .render({"a": NOW - dt.timedelta(days=1), "b": None, "now": NOW})
    )
    assert rendered.startswith('<span class="when">1 day ago <time')
    assert rendered.endswith("|—")
