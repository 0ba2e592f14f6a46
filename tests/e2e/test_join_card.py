"""The Join card in a real Chromium: loaded by htmx, a countdown that moves, a copy button that
puts kubeadm's exact command on the clipboard, and "New token" swapping in a new command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pki.models.tokens import BootstrapToken
from pki.services import certificates as certificate_services
from tests.factories import make_cluster

pytestmark = pytest.mark.e2e


@pytest.mark.django_db(transaction=True)
def test_the_join_card_counts_down_copies_and_makes_a_new_token(
    page_as: Callable[[str], Any], live_server: Any
) -> None:
    cluster = make_cluster("prod", control_plane_endpoint="10.0.0.1", key_algorithm="ECDSA-P256")
    certificate_services.ensure_cluster_cas(cluster)
    page = page_as("operator")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/clusters/{cluster.pk}/")
    error = page.locator("#join-error")
    error.wait_for()
    assert "no valid bootstrap token" in error.inner_text()

    page.click("#join-new-token")
    worker = page.locator("#join-worker")
    worker.wait_for()
    token = BootstrapToken.objects.get()
    assert worker.inner_text().startswith(f"kubeadm join 10.0.0.1:6443 --token {token.value}")

    countdown = page.locator(".countdown").first
    first = countdown.inner_text()
    page.wait_for_timeout(1500)
    assert countdown.inner_text() != first
    assert countdown.inner_text().startswith("23h 59m")

    page.click('button[data-copy="#join-worker"]')
    copied = page.evaluate("navigator.clipboard.readText()")
    expected = certificate_services.ca_certificates(cluster)
    assert copied.startswith(f"kubeadm join 10.0.0.1:6443 --token {token.value} \\\n\t")
    assert copied.count("--discovery-token-ca-cert-hash sha256:") == len(expected)

    page.click("#join-new-token")
    page.wait_for_function(
        "(old) => !document.querySelector('#join-worker').textContent.includes(old)",
        arg=token.value,
    )
    assert BootstrapToken.objects.count() == 2
