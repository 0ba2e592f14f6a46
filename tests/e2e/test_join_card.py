"""The Join card in a real Chromium: loaded by htmx with the token masked, a countdown that
moves, Copy that reveals (audited) and puts kubeadm's exact command on the clipboard, Show that
reveals the control-plane command with its certificate key, and "New token" swapping in a new
(masked) command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import certificates as certificate_services
from tests.factories import make_cluster

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_the_join_card_masks_counts_down_reveals_on_copy_and_makes_a_new_token(
    page_as: Callable[[str], Any], live_server: Any
) -> None:
    cluster = make_cluster("prod", control_plane_endpoint="10.0.0.1", key_algorithm="ECDSA-P256")
    certificate_services.ensure_cluster_cas(cluster)
    # An admin: the control-plane command carries the certificate key (operators see a note).
    page = page_as("admin")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/clusters/{cluster.pk}/")
    error = page.locator("#join-error")
    error.wait_for()
    assert "no valid bootstrap token" in error.inner_text()

    page.click("#join-new-token")
    worker = page.locator("#join-worker")
    worker.wait_for()
    token = BootstrapToken.objects.get()
    masked = f"{token.token_id}.{'*' * 16}"
    assert worker.inner_text().startswith(f"kubeadm join 10.0.0.1:6443 --token {masked}")
    assert token.secret not in page.content()
    assert not AuditEvent.objects.filter(action="join_command.reveal").exists()

    countdown = page.locator(".countdown").first
    first = countdown.inner_text()
    page.wait_for_timeout(1500)
    assert countdown.inner_text() != first
    assert countdown.inner_text().startswith("23h 59m")

    # Copy reveals the command (one audited reveal), shows it, and copies what it revealed.
    page.click('button[data-copy="#join-worker"]')
    page.locator("#join-worker[data-revealed]").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    expected = certificate_services.ca_certificates(cluster)
    assert copied.startswith(f"kubeadm join 10.0.0.1:6443 --token {token.value} \\\n\t")
    assert copied.count("--discovery-token-ca-cert-hash sha256:") == len(expected)
    assert page.locator("#join-worker").inner_text() == copied
    reveals = AuditEvent.objects.filter(action="join_command.reveal")
    assert [e.details["role"] for e in reveals.all()] == ["worker"]
    # Copying what is already shown reveals nothing new.
    page.click('button[data-copy="#join-worker"]')
    page.wait_for_selector('button[data-copy="#join-worker"] >> text=Copied')
    assert reveals.count() == 1

    # Show on the control plane: the command in clear with the key it made.
    control = page.locator("#join-control-plane")
    assert "*" * 64 in control.inner_text()
    page.click("#join-control-plane-show")
    page.locator("#join-control-plane[data-revealed]").wait_for()
    key = CertificateKey.objects.get()
    assert f"--control-plane --certificate-key {key.key}" in control.inner_text()
    assert reveals.count() == 2

    # The new card shows the new token, masked again (the old one was revealed above).
    page.click("#join-new-token")
    page.wait_for_function(
        "(old) => { const text = document.querySelector('#join-worker').textContent;"
        " return text.includes('.****************') && !text.includes(old + '.'); }",
        arg=token.token_id,
    )
    assert BootstrapToken.objects.count() == 2
    fresh = BootstrapToken.objects.order_by("-pk").first()
    assert fresh is not None and fresh.secret not in page.content()
    assert f"{fresh.token_id}.{'*' * 16}" in page.locator("#join-worker").inner_text()
    assert reveals.count() == 2
