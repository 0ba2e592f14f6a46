"""The cluster page in Chromium says what it did: a node added in place replaces the empty row
with a message, and deleting the last one brings the row back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import make_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_node_added_in_place_replaces_the_empty_row_and_says_so(
    page_as: Callable[[str], Any], transactional_db: Any
) -> None:
    cluster = make_cluster("empty", control_plane_endpoint="10.0.0.10")
    page = page_as("operator")
    page.goto(f"/clusters/{cluster.pk}/")
    empty = page.locator("#node-rows .empty-row")
    assert empty.is_visible() and "No nodes yet." in empty.inner_text()

    page.click("text=Add node")
    form = page.locator("#node-form-slot form")
    form.locator("#id_name").fill("cp-1")
    form.locator("#id_address").fill("10.0.0.11")
    form.locator("button[type=submit]").click()
    row = page.locator("#node-rows tr", has_text="cp-1")
    row.wait_for()
    assert empty.is_hidden()
    assert page.locator("#messages").inner_text().strip() == "Node cp-1 added."
    visible = [r for r in page.locator("#node-rows tr").all() if r.is_visible()]
    assert len(visible) == 1

    # Deleting the last node brings the empty row back, again with a message.
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    assert empty.is_visible()
    assert page.locator("#messages").inner_text().strip() == "Node cp-1 deleted."
