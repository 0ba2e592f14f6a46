"""``{{ value|when }}``: a moment as operators read it, relative and absolute at once.

"3 hours ago" alone is useless in a ticket or next to a log line, "2026-12-02 10:15 UTC" alone makes
the reader do arithmetic; every timestamp on the pages shows both: the relative part first, then
the absolute one in UTC inside a ``<time datetime>`` (machine-readable, and what a copy picks up).

``{{ value|when:now }}`` measures from ``now`` (a page that renders many rows passes one moment so
that they agree); ``{{ value|when_exact }}`` adds the seconds (job steps, health checks). Empty
values render as an em dash. Registered as a template builtin: no ``{% load %}`` needed.
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

register = template.Library()

# Below this, "ago"/"in" would read "0 minutes".
JUST_NOW = dt.timedelta(seconds=60)


def relative(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """``3 hours ago``, ``in 2 days`` or ``just now``: the largest unit only."""
    now = now or timezone.now()
    if abs(value - now) < JUST_NOW:
        return "just now"
    # Django joins number and unit with a no-break space; plain text reads (and matches) better.
    if value <= now:
        return f"{timesince(value, now, depth=1)} ago".replace("\xa0", " ")
    return f"in {timeuntil(value, now, depth=1)}".replace("\xa0", " ")


def _render(value: dt.datetime | None, now: dt.datetime | None, fmt: str) -> SafeString:
    if value is None or value == "":
        return format_html("{}", "—")
    if not isinstance(value, dt.datetime):
        return format_html("{}", value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    absolute = value.astimezone(dt.UTC)
    return format_html(
        '<span class="when">{} <time class="muted" datetime="{}">{} UTC</time></span>',
        relative(value, now),
        absolute.isoformat(),
        absolute.strftime(fmt),
    )


@register.filter(is_safe=True)
def when(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    return _render(value, now, "%Y-%m-%d %H:%M")


@register.filter(is_safe=True)
def when_exact(value: dt.datetime | None, now: dt.datetime | None = None) -> SafeString:
    return _render(value, now, "%Y-%m-%d %H:%M:%S")
