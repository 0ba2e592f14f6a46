"""Every poller in templates/ refreshes only while the page is visible.

htmx's trigger filters (``every 10s [document.visibilityState === 'visible']``) are evaluated
with ``eval``, which the Content-Security-Policy forbids; so a poller carries
``data-poll-visible``, whose requests static/js/panel.js cancels while the document is hidden,
and ``panel:visible`` in its trigger, which panel.js fires when the page becomes visible again
(the refresh the hidden page missed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
PANEL_JS = ROOT / "static" / "js" / "panel.js"

# Template tags inside an attribute confuse no one here: they are dropped before parsing.
_TEMPLATE_TAG = re.compile(r"{%.*?%}|{#.*?#}", re.S)


class _Pollers(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[int, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        trigger = values.get("hx-trigger") or ""
        if "every " in trigger:
            self.found.append((self.getpos()[0], values))


def _pollers(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    parser = _Pollers()
    parser.feed(_TEMPLATE_TAG.sub(" ", path.read_text()))
    return parser.found


def test_every_polling_element_polls_only_while_the_page_is_visible() -> None:
    pollers = {
        f"{path.relative_to(TEMPLATES)}:{line}": attrs
        for path in sorted(TEMPLATES.rglob("*.html"))
        for line, attrs in _pollers(path)
    }
    # The Health tab, the dashboard's health grid and a running job's log.
    assert {name.split(":")[0] for name in pollers} >= {
        "nodes/_health_panel.html",
        "nodes/_health_grid.html",
        "jobs/_poll.html",
    }
    for name, attrs in pollers.items():
        assert "data-poll-visible" in attrs, f"{name} polls while the page is hidden"
        triggers = [t.strip() for t in (attrs["hx-trigger"] or "").split(",")]
        assert "panel:visible" in triggers, f"{name} is not refreshed when the page shows again"
        assert "[" not in (attrs["hx-trigger"] or ""), f"{name}: a trigger filter needs eval"


def test_panel_js_holds_pollers_back_while_hidden_and_wakes_them_when_visible() -> None:
    script = PANEL_JS.read_text()
    held = re.search(
        r'addEventListener\("htmx:beforeRequest".*?document\.hidden.*?data-poll-visible.*?'
        r"preventDefault\(\)",
        script,
        re.S,
    )
    assert held, "panel.js must cancel a poller's request while the document is hidden"
    woken = re.search(
        r'addEventListener\("visibilitychange".*?\[data-poll-visible\].*?"panel:visible"',
        script,
        re.S,
    )
    assert woken, "panel.js must fire panel:visible on the pollers when the page shows again"
