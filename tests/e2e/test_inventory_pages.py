"""An operator logs in, creates a cluster and adds and edits nodes inline, in Chromium."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nodes.models import Cluster, Node

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_login_form_logs_in_and_shows_the_dashboard(
    browser: Any, live_server: Any, personas: dict[str, Any]
) -> None:
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.goto("/")
    assert "/login/" in page.url
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "viewer-Passw0rd!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    # A viewer sees no button to create clusters.
    assert page.locator("text=New cluster").count() == 0
    context.close()


@pytest.mark.django_db(transaction=True)
def test_operator_creates_a_cluster_and_manages_nodes_inline(
    page_as: Callable[[str], Any], ed25519_key: str, tmp_path: Path
) -> None:
    page = page_as("operator")
    page.goto("/clusters/new/")
    page.fill("#id_name", "lab")
    page.fill("#id_control_plane_endpoint", "https://10.0.0.10:6443")
    page.click("button[type=submit]")
    # Re-shown with the error next to the field, nothing stored.
    assert "scheme" in page.locator("#control_plane_endpoint-error").inner_text()
    assert Cluster.objects.count() == 0
    page.fill("#id_control_plane_endpoint", "10.0.0.10:6443")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('lab')")
    cluster = Cluster.objects.get(name="lab")

    # Add a node through the htmx form, uploading its key file.
    page.click("text=Add node")
    form = page.locator("#node-form-slot form")
    form.locator("#id_name").fill("cp-1")
    form.locator("#id_address").fill("10.0.0.11")
    form.locator("#id_role").select_option("control-plane")
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(ed25519_key)
    form.locator("#id_ssh_private_key_file").set_input_files(str(key_file))
    form.locator("button[type=submit]").click()
    row = page.locator("#node-rows tr", has_text="cp-1")
    row.wait_for()
    assert "set (private key)" in row.inner_text()
    assert page.locator("#node-form-slot form").count() == 0
    node = Node.objects.get(cluster=cluster, name="cp-1")
    assert node.ssh_private_key.strip() == ed25519_key.strip()

    # A duplicate address is refused inline, and the page stays usable.
    page.click("text=Add node")
    form = page.locator("#node-form-slot form")
    form.locator("#id_name").fill("cp-2")
    form.locator("#id_address").fill("10.0.0.11")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#address-error")
    assert "already used" in page.locator("#address-error").inner_text()
    assert Node.objects.filter(cluster=cluster).count() == 1

    # Edit the first node inline: the row turns into a form and back.
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator(f"#node-{node.pk} >> text=Edit").click()
    edit_form = page.locator(f"#node-{node.pk} form")
    edit_form.locator("#id_ssh_port").fill("2222")
    edit_form.locator("button[type=submit]").click()
    page.wait_for_selector(f"#node-{node.pk} >> text=port 2222")
    node.refresh_from_db()
    assert node.ssh_port == 2222
    # The stored key was kept: an empty key box means "keep".
    assert node.ssh_private_key.strip() == ed25519_key.strip()
    page.screenshot(path=str(tmp_path / "cluster.png"), full_page=True)
