"""The cluster and token pages in Chromium say what they did and offer only what works: a node
added in place replaces the empty row with a message, the new token can be copied, and a
cluster without its CA offers no token for joining."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nodes.models import Cluster
from pki.models.tokens import BootstrapToken
from pki.services import certificates as certificate_services
from tests.factories import make_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab(transactional_db: Any) -> Cluster:
    """A cluster with its CAs (ECDSA: instant)."""
    cluster = make_cluster("lab", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    certificate_services.ensure_cluster_cas(cluster)
    return cluster


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


def test_the_created_token_has_a_copy_button(
    lab: Cluster, page_as: Callable[[str], Any], live_server: Any
) -> None:
    from playwright.sync_api import expect

    page = page_as("operator")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/clusters/{lab.pk}/tokens/")
    assert page.locator("#token-needs-pki").count() == 0  # the CA exists
    page.click("text=Create token")
    card = page.locator("#token-created")
    card.wait_for()
    button = card.locator("#copy-created-token")
    assert button.inner_text() == "Copy"
    button.click()
    token = BootstrapToken.objects.get(cluster=lab)
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == token.value


def test_without_a_ca_the_join_card_offers_no_token_but_says_to_issue_the_pki(
    page_as: Callable[[str], Any], transactional_db: Any
) -> None:
    cluster = make_cluster("bare", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    page = page_as("operator")
    page.goto(f"/clusters/{cluster.pk}/")
    note = page.locator("#join-card #join-needs-pki")
    note.wait_for()
    assert "Issue the cluster's PKI first" in note.inner_text()
    page.wait_for_load_state("networkidle")
    assert page.locator("#join-new-token").count() == 0
    assert page.locator("#join-card button").count() == 0
    # The Tokens tab says the same before a token is made for nothing.
    page.click("nav.tabs >> text=Tokens")
    assert "no CA yet" in page.locator("#token-needs-pki").inner_text()

    # Once the PKI is issued the card loads the join commands and offers a new token.
    certificate_services.ensure_cluster_cas(cluster)
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator("#join-new-token").wait_for()
    assert page.locator("#join-needs-pki").count() == 0
