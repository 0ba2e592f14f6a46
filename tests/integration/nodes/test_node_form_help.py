"""The node form speaks of a stored credential only when there is one: on edit, not on add."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from nodes.models import Cluster
from tests.factories import make_node

pytestmark = pytest.mark.django_db

KEEP_KEY = "Leave empty to keep the stored key."
KEEP_PASSWORD = "Leave empty to keep the stored one."
REMOVE = "Remove the stored credential"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_the_add_form_has_no_edit_only_help(
    web_client: Callable[[str | None], Client], cluster: Cluster, htmx: bool
) -> None:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    html = web_client("operator").get(f"/clusters/{cluster.pk}/nodes/new/", **headers)
    text = html.content.decode()
    assert "Paste the key, or upload it below." in text
    assert KEEP_KEY not in text and KEEP_PASSWORD not in text and REMOVE not in text


def test_the_edit_form_says_an_empty_box_keeps_the_stored_credential(
    web_client: Callable[[str | None], Client], cluster: Cluster
) -> None:
    node = make_node(cluster, ssh_password="hunter2")
    text = web_client("operator").get(f"/nodes/{node.pk}/edit/").content.decode()
    assert KEEP_KEY in text and KEEP_PASSWORD in text and REMOVE in text
    assert "hunter2" not in text


def test_a_refused_add_form_still_has_no_edit_only_help(
    web_client: Callable[[str | None], Client], cluster: Cluster
) -> None:
    response = web_client("operator").post(
        f"/clusters/{cluster.pk}/nodes/new/", {"name": "Not A Name", "address": "x"}
    )
    text = response.content.decode()
    assert 'class="error"' in text
    assert KEEP_KEY not in text and REMOVE not in text
