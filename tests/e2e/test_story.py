"""The operator's story in a real Chromium, through the pages only: log in, create a cluster
behind a load balancer, add three control-plane and two worker nodes, scan and approve their
host keys, gather facts and run preflight, issue the PKI, bootstrap while watching the live log,
copy a join command, join one more worker, read certificate expiry, findings and the health
grid, renew and roll out a certificate, take and download an etcd backup.

The live server, the real jobs worker and the shared sshd test hosts do the work. kubeadm and
kubectl are recording stand-ins on the hosts (tests/standins): no Kubernetes runs, the hosts
receive the exact commands. Every stage is screenshotted (into ``CLUSTERPANEL_SCREENSHOTS`` when
set, else the test's temp directory), checked by axe-core (serious and critical violations fail),
and any request that leaves loopback fails the test.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from clusterpanel.jobs.models import Job
from nodes.health import tasks as health_tasks
from nodes.models import Cluster, ComponentHealth, EtcdSnapshot, Node
from nodes.recipes.cert_rollout import STATIC_PODS
from pki.models.certificates import Certificate
from pki.models.tokens import BootstrapToken
from tests import hosts, services, standins
from tests.e2e.conftest import WATCH_CSP, is_csp_violation
from tests.factories import make_user

pytestmark = [pytest.mark.e2e, pytest.mark.lifecycle, pytest.mark.django_db(transaction=True)]

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js"
# What these hosts cannot offer a kubelet (they share this machine's kernel, have no runtime).
IGNORED = (
    "cri-socket,cgroup-driver,ip_forward,br_netfilter,overlay,bridge-nf-call-iptables,"
    "bridge-nf-call-ip6tables,swap,cpus,memory,time,port-6443,port-2379,port-2380,port-10250,"
    "port-10257,port-10259"
)
CNI = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni-test\n"
JOB_TIMEOUT_MS = 120_000
JOB_ENDED = (
    "!['Queued', 'Running', 'Cancelling']"
    ".includes(document.querySelector('#job-status').textContent.trim())"
)
# For the certificate rollout and the health round, beyond kubeadm and kubectl.
ADDED_STANDINS = ("crictl", "curl", "openssl", "systemctl")


def _fresh(host: hosts.TestHost) -> None:
    """The host as a freshly installed machine (other tests share these hosts)."""
    root = host.bind_dir("/etc/kubernetes")
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    standins.clear_calls(host)
    shutil.rmtree(standins.state(host), ignore_errors=True)
    for tool in ("kubeadm", "kubectl"):
        standins.stop_failing(host, tool)
    standins.install_standins(host, ["kubeadm", "kubectl"])


def _leave(test_hosts: list[hosts.TestHost]) -> None:
    """Hand the shared hosts on as fresh machines, without the stand-ins added here."""
    for host in test_hosts:
        _fresh(host)
        for tool in ADDED_STANDINS:
            (host.bind_dir(standins.STANDIN_PATH) / tool).unlink(missing_ok=True)


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Story:
    """One browser page with its watchers: CSP violations, requests off loopback, axe."""

    def __init__(self, browser: Any, base_url: str, shots: Path) -> None:
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 800}
        )
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
        self.context.add_init_script(WATCH_CSP)
        # axe in every page, injected by the browser (the page's CSP does not apply to it).
        self.context.add_init_script(path=str(AXE))
        self.offsite: list[str] = []
        self.csp: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        # Generous: the suite runs the story beside other tests on two cores, with the worker
        # and the test hosts' sshd competing for them.
        self.page.set_default_timeout(30_000)
        self.page.on("console", self._console)
        self.shots = shots
        self.stage = 0
        self.times: list[tuple[str, float]] = []

    def _route(self, route: Any) -> None:
        if _loopback(route.request.url):
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error" and is_csp_violation(message.text):
            self.csp.append(f"{self.page.url}: {message.text}")

    def check(self, name: str) -> None:
        """Screenshot the page as stage ``name`` and run axe on it."""
        self.stage += 1
        self.times.append((name, time.monotonic()))
        self.page.screenshot(path=str(self.shots / f"{self.stage:02d}-{name}.png"))
        found = self.page.evaluate(
            """async () => {
              const result = await axe.run(document, {resultTypes: ["violations"]});
              return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => v.impact + " " + v.id + ": " + v.help + "\\n    " +
                     v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " +
                       n.failureSummary.replace(/\\n/g, " ")).join("\\n    "));
            }"""
        )
        assert not found, f"axe on {name} ({self.page.url}):\n  " + "\n  ".join(found)
        assert not self.offsite, f"requests off loopback: {self.offsite}"

    def job(self, kind: str, fill: Callable[[Any], None] | None = None) -> int:
        """Preview a job of ``kind`` (from the page open now, via its link), launch it, and
        watch its page until it ends; returns the job's id."""
        page = self.page
        if fill is not None:
            fill(page)
            page.get_by_role("button", name="Preview").click()
        page.locator("#job-preview").wait_for()
        page.locator("#launch-job").click()
        page.wait_for_url("**/jobs/*/")
        return self.wait_job()

    def wait_job(self) -> int:
        self.wait_on_job(JOB_ENDED)
        return self.job_id()

    def wait_on_job(self, condition: str) -> Any:
        """Wait on the job page open now until the JavaScript ``condition`` holds; a wait that
        times out says what the job is doing, from the database."""
        try:
            return self.page.wait_for_function(
                f"() => {condition}", timeout=JOB_TIMEOUT_MS, polling=200
            )
        except Exception as exc:
            raise AssertionError(self.job_state()) from exc

    def job_id(self) -> int:
        return int(self.page.url.rstrip("/").rsplit("/", 1)[1])

    def job_state(self) -> str:
        job = Job.objects.get(pk=self.job_id())
        steps = [
            f"{step.phase}/{step.name}@{step.node_name or 'panel'}: {step.status}"
            for step in job.steps.order_by("position")
        ]
        return (
            f"job #{job.pk} ({job.kind}) is {job.status} after {JOB_TIMEOUT_MS // 1000} s: "
            f"{job.explanation!r}; steps: {steps}"
        )


def _add_nodes(
    story: Story, hosts_: list[hosts.TestHost], roles: list[str], ssh_client_key: str
) -> None:
    """Add nodes with the cluster page's inline form (the rows appear without a reload)."""
    page = story.page
    for host, role in zip(hosts_, roles, strict=True):
        page.get_by_role("link", name="Add node").click()
        page.get_by_label("Name", exact=True).fill(host.name)
        page.get_by_label("Address", exact=True).fill(host.address)
        page.get_by_label("Role").select_option(role)
        page.get_by_label("SSH private key").fill(ssh_client_key)
        if story.stage == 2:
            story.check("add-node")
        page.get_by_role("button", name="Add node").click()
        page.locator("#node-rows tr", has_text=host.address).wait_for()


def _approve_host_keys(story: Story, nodes: list[Node], hosts_: list[hosts.TestHost]) -> None:
    """Scan each host key and approve it, after comparing it with what the machine shows."""
    page = story.page
    for node, host in zip(nodes, hosts_, strict=True):
        page.goto(f"/nodes/{node.pk}/")
        page.locator("#scan-host-key").click()
        pending = page.locator("#pending-fingerprint")
        pending.wait_for()
        assert pending.inner_text() == host.host_key_fingerprint, node.name
        if story.stage == 4:
            story.check("host-key-scanned")
        page.locator("#approve-host-key button[type=submit]").click()
        page.locator("#pinned-fingerprint").wait_for()
        node.refresh_from_db()
        assert node.host_key_fingerprint == host.host_key_fingerprint, node.name


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("CLUSTERPANEL_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_the_operator_story_from_an_empty_panel_to_a_backed_up_cluster(
    browser: Any,
    live_server: Any,
    jobs_worker: str,
    test_hosts: list[hosts.TestHost],
    ssh_client_key: str,
    shots: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    make_user("olivia", "admin")
    for host in test_hosts:
        _fresh(host)
    story = Story(browser, live_server.url, shots)
    try:
        _story(story, live_server.url, test_hosts, ssh_client_key, tmp_path)
    except Exception:
        story.page.screenshot(path=str(shots / "failed.png"))
        raise
    finally:
        story.context.close()
        _leave(test_hosts)
    marks = [("start", started), *story.times]
    print(
        f"the story took {time.monotonic() - started:.1f}s:",
        ", ".join(
            f"{name} {at - before:.1f}s" for (_, before), (name, at) in itertools.pairwise(marks)
        ),
    )
    assert not story.csp, "Content-Security-Policy violations:\n" + "\n".join(story.csp)
    assert not story.offsite, f"requests off loopback: {story.offsite}"


def _story(
    story: Story, base: str, test_hosts: list[hosts.TestHost], ssh_client_key: str, work: Path
) -> None:
    page = story.page

    # Log in.
    page.goto("/")
    page.get_by_label("Username").fill("olivia")
    page.get_by_label("Password").fill("olivia-Passw0rd!")
    story.check("login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")

    # A cluster behind a load balancer.
    page.goto("/clusters/new/")
    page.get_by_label("Name", exact=True).fill("prod")
    page.get_by_label("Control-plane endpoint").fill("lb.prod.internal:6443")
    story.check("new-cluster")
    page.get_by_role("button", name="Create cluster").click()
    page.wait_for_url("**/clusters/*/")
    cluster = Cluster.objects.get(name="prod")
    assert cluster.control_plane_endpoint == "lb.prod.internal:6443"

    # Three control-plane nodes and a worker; the second worker joins the running cluster later.
    roles = ["control-plane"] * 3 + ["worker"]
    first = test_hosts[:4]
    _add_nodes(story, first, roles, ssh_client_key)
    story.check("nodes")
    nodes = list(Node.objects.filter(cluster=cluster).order_by("pk"))
    assert [(n.name, n.role) for n in nodes] == [
        (h.name, r) for h, r in zip(first, roles, strict=True)
    ]
    _approve_host_keys(story, nodes, first)

    # Facts, then preflight: read the results on the job pages.
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator("#launch-facts").click()
    facts = story.job("facts", lambda p: None)
    assert page.locator("#job-status").inner_text() == "Succeeded"
    story.check("facts")
    assert Job.objects.get(pk=facts).status == "succeeded"
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator("#launch-preflight").click()
    preflight = story.job("preflight", lambda p: None)
    story.check("preflight")
    # These hosts share this machine's kernel and run no container runtime: preflight says so,
    # node by node; the bootstrap below names the checks it ignores.
    summary = page.locator("#job-summary").inner_text()
    assert Job.objects.get(pk=preflight).status == "failed"
    assert "no container runtime socket found on node-1" in summary
    assert "Steps done: 5 of 5" in summary

    # The PKI: every certificate the nodes need, signed by the cluster's own CAs.
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    page.locator("#issue-button").click()
    page.locator("#certificates-table").wait_for()
    story.check("pki")

    # Bootstrap: preview the plan, launch, and watch the log and the progress move.
    init = test_hosts[0]
    (init.bind_dir("/etc/kubernetes") / "cni.yaml").write_text(CNI)
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator("#launch-bootstrap").click()
    page.locator("#param-cni_manifest_path").fill("/etc/kubernetes/cni.yaml")
    page.locator("#param-ignore_preflight_errors").fill(IGNORED)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#job-preview")
    preview.wait_for()
    assert "kubeadm init" in preview.inner_text()
    # The screenshot shows the plan's start, below the inputs.
    page.evaluate("document.querySelector('#job-preview').scrollIntoView({block: 'start'})")
    story.check("bootstrap-preview")
    page.locator("#launch-job").click()
    page.wait_for_url("**/jobs/*/")
    # The page polls: the log grows and the progress moves while the job runs. (A job that
    # ends first stops the wait too, so that its failure is reported with its explanation.)
    moved = story.wait_on_job(
        "(document.querySelector('#job-progress').value > 0"
        " && document.querySelector('#job-log').textContent.includes('kubeadm'))"
        f" || {JOB_ENDED}"
    )
    assert moved.json_value()
    bootstrap = story.wait_job()
    job = Job.objects.get(pk=bootstrap)
    assert job.status == "succeeded", job.explanation
    assert "kubeadm" in page.locator("#job-log").inner_text()
    assert page.locator("#job-status").inner_text() == "Succeeded"
    progress = page.locator("#job-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max")
    story.check("bootstrap")
    for host in first:
        expected = (
            ["kubeadm", "init", "--config"] if host is init else ["kubeadm", "join", "--config"]
        )
        assert [c[:3] for c in standins.calls(host, "kubeadm") if c[1] in ("init", "join")][:1] == [
            expected
        ], host.name

    # The join command, copied from the cluster page (the copy reveals the masked token).
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator("#join-worker").wait_for()
    page.locator('button[data-copy="#join-worker"]').click()
    page.locator("#join-worker[data-revealed]").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    token = BootstrapToken.objects.get(cluster=cluster)
    assert copied.startswith(f"kubeadm join lb.prod.internal:6443 --token {token.value} ")
    assert "--discovery-token-ca-cert-hash sha256:" in copied
    story.check("join-command")

    # One more worker, joined to the running cluster by the join job.
    late = test_hosts[4]
    _add_nodes(story, [late], ["worker"], ssh_client_key)
    new = Node.objects.get(cluster=cluster, name=late.name)
    _approve_host_keys(story, [new], [late])
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    page.locator("#issue-button").click()
    page.locator("#certificates-table").wait_for()
    # The cluster holds the token now: the stand-in kubectl finds its Secret.
    (standins.state(init) / "kubectl-get").write_text(f"secret/bootstrap-token-{token.token_id}\n")
    page.goto(f"/clusters/{cluster.pk}/")
    page.locator(f"#join-node-{new.pk}").click()
    page.locator("#param-ignore_preflight_errors").fill(IGNORED)
    joined = story.job("join", lambda p: None)
    job = Job.objects.get(pk=joined)
    assert job.status == "succeeded", job.explanation
    story.check("join")
    assert [c[:3] for c in standins.calls(late, "kubeadm") if c[1] == "join"] == [
        ["kubeadm", "join", "--config"]
    ]
    new.refresh_from_db()
    assert new.joined_at is not None

    # The hosts run no kubelet, runtime or apiserver: stand-ins answer for crictl (a container
    # per static-pod manifest), curl (/livez "ok") and openssl s_client (the node's
    # apiserver.crt), and systemctl only records.
    for host in test_hosts[:3]:
        manifests = host.bind_dir("/etc/kubernetes") / "manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        for component in STATIC_PODS:
            (manifests / f"{component}.yaml").write_text(f"kind: Pod # {component}\n")
    for host in test_hosts:
        standins.install_standins(host, ADDED_STANDINS[:3])
        standins.install_recorder(host, "systemctl")
        (standins.state(host) / "crictl-static-pods").touch()

    # Certificate expiry: a scan reads the files on the nodes; the fleet table and the findings.
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    page.locator("#scan-certificates").click()
    scan = story.job("cert-scan")
    assert Job.objects.get(pk=scan).status == "succeeded", Job.objects.get(pk=scan).explanation
    page.goto("/certificates/fleet/")
    assert "prod" in page.locator("main").inner_text()
    story.check("certificate-expiry")
    page.goto("/findings/")
    story.check("findings")

    # The health grid: "Check now" makes the round due; beat (played here) sends it to the
    # worker, which checks every node over SSH.
    page.goto(f"/clusters/{cluster.pk}/health/")
    page.locator("#check-now").click()
    health_tasks.schedule_health_rounds()
    services.wait_for(
        lambda: ComponentHealth.objects.filter(cluster=cluster, component="ssh").count() == 5,
        60,
        "a health round",
    )
    page.goto(f"/clusters/{cluster.pk}/health/")
    assert page.locator("#health-checks tbody tr").count() > 5
    story.check("health")
    page.goto("/")
    page.locator(f"#health-row-{cluster.pk}").wait_for()
    story.check("dashboard")

    # Renew the first control-plane node's apiserver certificate and roll it out.
    old = Certificate.objects.get(
        cluster=cluster, name="apiserver", node_name=init.name, status="active"
    )
    page.goto(f"/clusters/{cluster.pk}/certificates/")
    page.get_by_label("Node", exact=True).select_option(init.name)
    page.get_by_label("Search").fill("apiserver")
    page.get_by_role("button", name="Filter").click()
    page.locator(f"#cert-{old.pk} input[type=checkbox]").check()
    story.check("certificates")
    page.locator("#renew-rollout-button").click()
    page.locator("#job-preview").wait_for()
    rolled = story.job("cert-rollout")
    job = Job.objects.get(pk=rolled)
    assert job.status == "succeeded", job.explanation
    story.check("rollout")
    renewed = Certificate.objects.get(
        cluster=cluster, name="apiserver", node_name=init.name, status="active"
    )
    assert renewed.pk != old.pk
    served = (init.bind_dir("/etc/kubernetes") / "pki" / "apiserver.crt").read_text()
    assert served.strip() == renewed.certificate_pem.strip()
    # kube-apiserver restarted: its container was looked for while its manifest was held away.
    assert ["crictl", "ps", "--name", "kube-apiserver", "-q"] in standins.calls(init, "crictl")

    # An etcd backup, taken and downloaded. kubeadm's stacked etcd would be a static pod of the
    # first control-plane node: here it is a real etcd on that node's address, serving the
    # panel-issued certificates that node holds.
    with _etcd_member(init, work):
        page.goto(f"/clusters/{cluster.pk}/backups/")
        page.locator("#take-backup").click()
        backup = story.job("etcd-backup")
        job = Job.objects.get(pk=backup)
        assert job.status == "succeeded", job.explanation
    snapshot = EtcdSnapshot.objects.get(cluster=cluster)
    page.goto(f"/clusters/{cluster.pk}/backups/")
    story.check("backups")
    with page.expect_download() as download:
        page.locator(f"#download-{snapshot.pk}").click()
    saved = work / "etcd-snapshot.db"
    download.value.save_as(saved)
    status = subprocess.run(
        ["etcdctl", "snapshot", "status", str(saved), "-w", "json"],
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["totalKey"] >= 1


@contextlib.contextmanager
def _etcd_member(host: hosts.TestHost, workdir: Path) -> Iterator[None]:
    pki = host.bind_dir("/etc/kubernetes") / "pki" / "etcd"
    client = f"https://{host.address}:2379"
    log = (workdir / "etcd.log").open("wb")
    process = subprocess.Popen(
        [
            "etcd", "--name", host.name, "--data-dir", str(workdir / "etcd-data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", f"http://{host.address}:2380",
            "--initial-advertise-peer-urls", f"http://{host.address}:2380",
            "--initial-cluster", f"{host.name}=http://{host.address}:2380",
            "--cert-file", str(pki / "server.crt"), "--key-file", str(pki / "server.key"),
            "--trusted-ca-file", str(pki / "ca.crt"), "--client-cert-auth",
        ],
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        services.wait_for(lambda: _listening(host.address, 2379), 30, "etcd")
        yield
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0
