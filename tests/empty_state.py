"""Reading a list's empty state (templates/_empty.html) out of a page."""

from __future__ import annotations

import re


def empty_state(html: str, table_id: str | None = None) -> str:
    """The markup inside the empty-state cell or paragraph (of the table ``table_id`` when
    given); fails when the page shows none."""
    if table_id is not None:
        found = re.search(rf'<table id="{re.escape(table_id)}".*?</table>', html, flags=re.S)
        assert found, f"no table {table_id!r}"
        html = found.group(0)
    found = re.search(r'<(td colspan="\d+"|p) class="empty">(.*?)</(td|p)>', html, flags=re.S)
    assert found, "no empty state"
    return found.group(2).strip()


def action_link(state: str) -> str | None:
    """Where the empty state's action link goes, or None when it offers none."""
    found = re.search(r'<a href="([^"]*)" class="empty-action">', state)
    return found.group(1) if found else None
