"""The Tokens and Configuration tabs in Chromium: a token shown once, revealed again (audited),
revoked; a node's kubeadm file previewed with its secrets masked and downloaded in clear
(audited); the load balancer configs downloaded and accepted by nginx and haproxy themselves."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.models import AuditEvent
from nodes.models import Cluster
from pki.models.tokens import BootstrapToken, CertificateKey
from pki.services import certificates as certificate_services
from tests.factories import make_cluster, make_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")


@pytest.fixture
def lab(transactional_db: Any) -> Cluster:
    """Two control-plane nodes and a worker, with the cluster CAs (ECDSA: instant)."""
    cluster = make_cluster(
        "lab", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_nodes(
        cluster,
        [
            ("cp-1", "10.0.0.11", "control-plane"),
            ("cp-2", "10.0.0.12", "control-plane"),
            ("w-1", "10.0.1.1", "worker"),
        ],
    )
    certificate_services.ensure_cluster_cas(cluster)
    return cluster


def _check_config(command: list[str]) -> None:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        pytest.fail(f"{command[0]} is not installed; tests/run.py installs it")
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_token_is_shown_once_revealed_with_an_audit_event_and_revoked(
    lab: Cluster, page_as: Callable[[str], Any], tmp_path: Path
) -> None:
    page = page_as("operator")
    # The join card says what to do on the page, not in API terms.
    page.goto(f"/clusters/{lab.pk}/")
    join_error = page.locator("#join-error")
    join_error.wait_for()
    assert join_error.inner_text().endswith("Create one with New token.")
    assert "new_token" not in join_error.inner_text()

    page.click("nav.tabs >> text=Tokens")
    page.fill("#id_ttl", "2h")
    page.fill("#id_description", "rack 4")
    page.click("text=Create token")
    created = page.locator("#created-token")
    created.wait_for()
    token = BootstrapToken.objects.get(cluster=lab)
    assert TOKEN.fullmatch(created.inner_text().strip())
    assert created.inner_text().strip() == token.value
    row = page.locator(f"#token-{token.pk}")
    assert row.locator(".badge").inner_text() == "active"
    assert "rack 4" in row.inner_text() and "in 1 hour" in row.inner_text()
    page.screenshot(path=str(tmp_path / "tokens.png"), full_page=True)

    # Shown once: browsing the tab again shows the id, never the secret.
    page.goto(f"/clusters/{lab.pk}/tokens/")
    assert page.locator("#token-created").count() == 0
    assert token.secret not in page.content()

    # Reveal (htmx, in the row's slot): the value again, and one audit event naming the token.
    row = page.locator(f"#token-{token.pk}")
    row.get_by_role("button", name="Reveal").click()
    revealed = page.locator(f"#reveal-{token.pk} .token-reveal")
    revealed.wait_for()
    assert token.value in revealed.inner_text()
    assert f"kubeadm token create {token.value}" in revealed.inner_text()
    reveal = AuditEvent.objects.get(action="token.reveal")
    assert (reveal.actor_name, reveal.object_id) == ("operator", str(token.pk))
    assert reveal.details == {"token_id": token.token_id}
    assert token.secret not in str(reveal.details)

    # Revoke, confirming the browser's dialog: the status changes and the button goes.
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_selector(f".messages >> text=Token {token.token_id} revoked.")
    row = page.locator(f"#token-{token.pk}")
    assert row.locator(".badge").inner_text() == "revoked"
    assert row.get_by_role("button", name="Revoke").count() == 0
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", object_id=str(token.pk)).count() == 1


def test_the_configuration_tab_previews_node_files_and_downloads_load_balancer_configs(
    lab: Cluster, page_as: Callable[[str], Any], tmp_path: Path
) -> None:
    page = page_as("operator")
    page.goto(f"/clusters/{lab.pk}/config/")
    assert "kind: ClusterConfiguration" in page.locator("#cluster-configuration").inner_text()
    page.screenshot(path=str(tmp_path / "configuration.png"), full_page=True)

    # The worker's join file needs a token; the page says how to get one, then renders.
    page.locator("#node-configs tr", has_text="w-1").locator("text=Preview").click()
    error = page.locator("#config-error")
    error.wait_for()
    assert "no valid bootstrap token" in error.inner_text()
    assert "new_token" not in error.inner_text()
    assert error.inner_text().endswith("Create one with “Create a new token and render” below.")
    assert not BootstrapToken.objects.exists()
    page.get_by_role("button", name="Create a new token and render").click()
    config = page.locator("#kubeadm-config")
    config.wait_for()
    token = BootstrapToken.objects.get(cluster=lab)
    masked = f"{token.token_id}.{'*' * 16}"
    assert "kind: JoinConfiguration" in config.inner_text()
    assert f"token: {masked}" in config.inner_text()
    assert token.secret not in page.content()
    assert "name: w-1" in config.inner_text()
    # The preview records nothing; the downloaded file has the token in clear and is audited.
    assert not AuditEvent.objects.filter(action="kubeadm_config.download").exists()
    with page.expect_download() as info:
        page.click("#kubeadm-config-download")
    assert info.value.suggested_filename == "kubeadm-w-1.yaml"
    info.value.save_as(tmp_path / "kubeadm-w-1.yaml")
    assert f"token: {token.value}" in (tmp_path / "kubeadm-w-1.yaml").read_text()

    # Control-plane files carry the certificate key: the operator gets no link to them.
    page.goto(f"/clusters/{lab.pk}/config/")
    cp_row = page.locator("#node-configs tr", has_text="cp-1")
    assert cp_row.locator("text=Preview").count() == 0
    assert "admins only" in cp_row.inner_text()

    # An admin's first control-plane node gets kubeadm init's file, with the same usable token;
    # it carries a certificate key, which the page makes on request before the download.
    page = page_as("admin")
    page.goto(f"/clusters/{lab.pk}/config/")
    page.locator("#node-configs tr", has_text="cp-1").locator("text=Preview").click()
    config = page.locator("#kubeadm-config")
    config.wait_for()
    text = config.inner_text()
    assert "kind: InitConfiguration" in text and "kind: ClusterConfiguration" in text
    assert masked in text and "advertiseAddress: 10.0.0.11" in text
    assert page.locator("#kubeadm-config-download").count() == 0
    page.get_by_role("button", name="Make a certificate key").click()
    page.wait_for_selector(".messages >> text=Certificate key made")
    key = CertificateKey.objects.get(cluster=lab)
    assert key.key not in page.content() and "*" * 64 in config.inner_text()
    with page.expect_download() as info:
        page.click("#kubeadm-config-download")
    info.value.save_as(tmp_path / "kubeadm-cp-1.yaml")
    init = (tmp_path / "kubeadm-cp-1.yaml").read_text()
    assert token.value in init and key.key in init
    downloads = AuditEvent.objects.filter(action="kubeadm_config.download")
    assert sorted(e.details["kind"] for e in downloads) == ["init", "join"]

    # Load balancer configs: downloaded by the browser, accepted by the tools themselves.
    page.goto(f"/clusters/{lab.pk}/config/")
    saved = {}
    for link, name in (("nginx.conf", "nginx.conf"), ("haproxy.cfg", "haproxy.cfg")):
        with page.expect_download() as info:
            page.locator("#load-balancer").locator(f"text={link}").click()
        assert info.value.suggested_filename == name
        saved[name] = tmp_path / name
        info.value.save_as(saved[name])
        text = saved[name].read_text()
        assert "10.0.0.11:6443" in text and "10.0.0.12:6443" in text
        assert "10.0.1.1" not in text  # the worker runs no apiserver
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    _check_config([nginx, "-t", "-p", str(tmp_path), "-c", str(saved["nginx.conf"])])
    _check_config([haproxy, "-c", "-f", str(saved["haproxy.cfg"])])
