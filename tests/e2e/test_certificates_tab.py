"""The Certificates tab in Chromium, as an operator uses it: issue the tree, inspect a certificate,
check a name the apiserver certificate lacks, add it and reissue, and download a user kubeconfig.

The page's answers are judged by the real tools: openssl for fingerprints and SANs, kubectl (Go's
TLS client) against a loopback HTTPS server holding the issued apiserver certificate.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterpanel.models import AuditEvent
from pki.models import Certificate, CertificateStatus
from tests.factories import make_cluster, make_nodes

pytestmark = pytest.mark.e2e

NODES = [
    ("cp-1", "10.0.0.11", "control-plane"),
    ("cp-2", "10.0.0.12", "control-plane"),
    ("w-1", "10.0.1.1", "worker"),
]
SHARED = [
    "apiserver-kubelet-client",
    "front-proxy-client",
    "apiserver-etcd-client",
    "etcd/healthcheck-client",
]
PER_CONTROL_PLANE = [
    "apiserver",
    "etcd/server",
    "etcd/peer",
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
    "kubelet.conf",
]
# Every file kubeadm writes for two control-plane nodes and a worker (the CAs are on their page).
NO_NODE = "\N{EN DASH}"  # what the table shows for a shared file
EXPECTED_FILES = {(name, NO_NODE) for name in SHARED} | {
    (name, node) for node in ("cp-1", "cp-2") for name in PER_CONTROL_PLANE
}
EXPECTED_FILES.add(("kubelet.conf", "w-1"))
NEW_NAME = "api.example.com"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; tests/run.py installs it")
    return path


def _openssl(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [_tool("openssl"), *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class _Livez(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def apiserver(row: Certificate, tmp_path: Path) -> Iterator[str]:
    """A loopback HTTPS server presenting ``row`` (with its key); yields its URL."""
    cert, key = tmp_path / "apiserver.crt", tmp_path / "apiserver.key"
    cert.write_text(row.certificate_pem)
    key.write_text(row.private_key_pem)
    key.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Livez)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubectl_livez(url: str, ca: Path, server_name: str, home: Path) -> subprocess.CompletedProcess:
    """What Go's TLS client says when it reaches ``url`` asking for ``server_name``."""
    return subprocess.run(
        [
            _tool("kubectl"),
            "--kubeconfig",
            "/dev/null",
            "--server",
            url,
            "--certificate-authority",
            str(ca),
            "--tls-server-name",
            server_name,
            "--token",
            "not-checked",  # any credential, or kubectl asks for a user name
            "--request-timeout",
            "5s",
            "get",
            "--raw",
            "/livez",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def _cells(row: Any) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


@pytest.mark.django_db(transaction=True)
def test_an_operator_issues_inspects_checks_and_reissues_the_tree(
    page_as: Callable[[str], Any], tmp_path: Path
) -> None:
    cluster = make_cluster(
        "lab", control_plane_endpoint="lb.example.internal", key_algorithm="ECDSA-P256"
    )
    make_nodes(cluster, NODES)
    page = page_as("operator")
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    assert "No certificates" in page.locator("#certificates-table tbody").inner_text()
    assert f"{len(EXPECTED_FILES)} files not issued yet" in page.locator("#coverage").inner_text()

    # 1. Issue: the table fills with every kubeadm file, each with its expiry band.
    page.click("#issue-button")
    page.wait_for_selector(".messages >> text=Issued")
    rows = page.locator("#certificates-table tbody tr")
    files = set()
    for i in range(rows.count()):
        cells = _cells(rows.nth(i))
        files.add((cells[1], cells[2]))
        assert cells[6].startswith(("364 d", "365 d")), cells
        assert cells[7] == "active"
    assert files == EXPECTED_FILES
    assert rows.locator(".badge.band-ok").count() == len(EXPECTED_FILES)
    assert rows.locator(".expiry-bar").count() == len(EXPECTED_FILES)
    assert "Every file of the current topology exists" in page.locator("#coverage").inner_text()

    # 2. The inspector (htmx, no navigation): SANs and fingerprint as openssl reads them.
    apiserver_row = Certificate.objects.get(
        cluster=cluster, name="apiserver", node_name="cp-1", status=CertificateStatus.ACTIVE
    )
    url = page.url
    page.locator(f"#cert-{apiserver_row.pk} >> text=Inspect").click()
    panel = page.locator("#inspector-panel")
    panel.wait_for()
    assert page.url == url
    (tmp_path / "cp-1.crt").write_text(apiserver_row.certificate_pem)
    fingerprint = _openssl(
        "x509", "-in", "cp-1.crt", "-noout", "-fingerprint", "-sha256", cwd=tmp_path
    )
    shown = panel.locator("dt:text-is('SHA-256 fingerprint') + dd").inner_text().strip()
    assert shown.replace(":", "").upper() == fingerprint.split("=", 1)[1].strip().replace(":", "")
    assert shown == apiserver_row.fingerprint_sha256
    sans = _openssl("x509", "-in", "cp-1.crt", "-noout", "-ext", "subjectAltName", cwd=tmp_path)
    entries = [e.strip() for e in sans.splitlines()[1].split(",")]
    dns = [e.removeprefix("DNS:") for e in entries if e.startswith("DNS:")]
    ips = [e.removeprefix("IP Address:") for e in entries if e.startswith("IP Address:")]
    assert panel.locator("dt:text-is('DNS SANs') + dd").inner_text() == ", ".join(dns)
    assert panel.locator("dt:text-is('IP SANs') + dd").inner_text() == ", ".join(ips)
    assert "cp-1" in dns and "lb.example.internal" in dns and "10.0.0.11" in ips

    # 3. SAN check for a name not covered: Go's exact words, as kubectl prints them.
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(apiserver_row.authority.certificate_pem)
    with apiserver(apiserver_row, tmp_path) as server:
        refused = kubectl_livez(server, ca_file, NEW_NAME, tmp_path)
    assert refused.returncode != 0
    page.fill("input[name=host]", NEW_NAME)
    page.click("text=Check apiserver certificates")
    result_rows = page.locator("#san-check-result tbody tr")
    result_rows.first.wait_for()
    assert result_rows.count() == 2  # one apiserver certificate per control-plane node
    cp1 = _cells(result_rows.filter(has_text="apiserver (cp-1)"))
    assert cp1[1:3] == [NEW_NAME, "not covered"]
    assert cp1[3] == f"x509: certificate is valid for {', '.join(dns)}, not {NEW_NAME}"
    assert cp1[3] in refused.stderr
    assert cp1[4] == NEW_NAME
    # The tab with its table, the inspector and the SAN check filled in.
    page.screenshot(path=str(tmp_path / "certificates.png"), full_page=True)

    # 4. Add the name to the cluster: both apiserver certificates are flagged; reissue clears it.
    page.goto(f"/clusters/{cluster.pk}/edit/")
    page.fill("#id_extra_sans", NEW_NAME)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/clusters/{cluster.pk}/")
    page.click("nav.tabs >> text=Certificates")
    page.wait_for_url(f"**/clusters/{cluster.pk}/certificates/")
    stale = page.locator("#stale-list li")
    stale.nth(1).wait_for()  # reading the list does not wait for the page to load
    assert sorted(stale.all_inner_texts()) == [
        f"apiserver (cp-1) lacks {NEW_NAME}",
        f"apiserver (cp-2) lacks {NEW_NAME}",
    ]
    page.once("dialog", lambda dialog: dialog.accept())  # reissuing asks first
    page.click("#reissue-button")
    page.wait_for_selector(".messages >> text=Reissued 2 certificates")
    assert page.locator("#stale-list").count() == 0
    assert "covers its names" in page.locator("#coverage").inner_text()
    reissued = Certificate.objects.get(
        cluster=cluster, name="apiserver", node_name="cp-1", status=CertificateStatus.ACTIVE
    )
    assert reissued.pk != apiserver_row.pk and NEW_NAME in reissued.dns_names
    with apiserver(reissued, tmp_path) as server:
        accepted = kubectl_livez(server, ca_file, NEW_NAME, tmp_path)
    assert (accepted.returncode, accepted.stdout) == (0, "ok"), accepted.stderr
    page.fill("input[name=host]", NEW_NAME)
    page.click("text=Check apiserver certificates")
    page.wait_for_selector("#san-check-result tbody tr")
    assert page.locator("#san-check-result .badge").all_inner_texts() == ["covered", "covered"]


@pytest.mark.django_db(transaction=True)
def test_an_operator_downloads_a_user_kubeconfig_and_is_told_what_is_wrong(
    page_as: Callable[[str], Any], tmp_path: Path
) -> None:
    cluster = make_cluster("lab", control_plane_endpoint="10.0.0.10", key_algorithm="ECDSA-P256")
    page = page_as("operator")
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    form = page.locator("#kubeconfig-form")
    form.locator("#id_username").fill("alice")
    form.locator("#id_groups").fill("dev, system:masters")
    form.locator("#id_validity").fill("30")
    form.locator("button[type=submit]").click()
    error = page.locator("#groups-error")
    error.wait_for()
    assert "system:masters bypasses RBAC" in error.inner_text()
    assert page.locator("#id_groups").input_value() == "dev, system:masters"
    assert not Certificate.objects.filter(cluster=cluster).exists()

    page.locator("#id_groups").fill("dev")
    with page.expect_download() as download_info:
        page.locator("#kubeconfig-button").click()
    download = download_info.value
    assert download.suggested_filename == "alice.conf"
    config = yaml.safe_load(Path(download.path()).read_text())
    assert config["current-context"] == "alice@kubernetes"
    assert config["clusters"][0]["cluster"]["server"] == "https://10.0.0.10:6443"
    event = AuditEvent.objects.get(action="pki.kubeconfig.issue")
    assert event.actor_name == "operator"
    assert event.details["username"] == "alice" and event.details["groups"] == ["dev"]
