"""external-etcd, etcd-backup and etcd-restore on three real sshd test hosts with real etcd 3.4.

The test hosts have no systemd: ``tests/standins/systemctl``, a recording stand-in, is put first
on each host's PATH; it runs a unit's ExecStart as a process of the host (its own session), so
the etcd members are real etcd processes, each on its host's own 127.0.x.y address. Everything
else — certificates, TLS, etcdctl, snapshots — is real. The tests check etcd from this machine
with the panel's own client certificate (``apiserver-etcd-client``), not through the panel.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from clusterpanel.errors import InputError
from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job
from clusterpanel.models import AuditEvent
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, EtcdSnapshot, Node
from pki.services.certificates import active_cas, active_tree, issue_missing
from tests import hosts, services
from tests.actors import SETUP
from tests.dbdump import database_dump
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]
ETCDCTL_ENV = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
STANDINS = Path(__file__).resolve().parents[2] / "standins"


def install_standins(host: hosts.TestHost, names: Sequence[str]) -> None:
    """Put stand-ins from tests/standins first on the host's PATH (its own /usr/local/sbin)."""
    for name in names:
        target = host.bind_dir("/usr/local/sbin") / name
        shutil.copyfile(STANDINS / name, target)
        target.chmod(0o755)


def standin_calls(host: hosts.TestHost) -> list[list[str]]:
    """The stand-ins' records on ``host``: [tool, arg, …] per call, in order."""
    path = host.bind_dir("/usr/local/sbin") / ".standin" / "calls"
    if not path.exists():
        return []
    records = path.read_bytes().split(b"\036")[:-1]
    return [[part.decode() for part in record.split(b"\0")] for record in records]


@pytest.fixture
def operator() -> Actor:
    return Actor.for_command(make_user("etcd-operator", "operator"))


def _wait(job: Job, timeout: float = 90) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, timeout, f"{job} to end (is {job.status})")
    return job


def _steps(job: Job) -> str:
    return "; ".join(
        f"{s.phase}/{s.name}@{s.node_name}: {s.status} {s.message}"
        for s in job.steps.order_by("position")
    )


class EtcdCluster:
    """Three etcd members on test hosts, inventoried in a cluster with its PKI issued."""

    def __init__(self, make_test_hosts: MakeHosts, key: str, name: str) -> None:
        self.hosts = make_test_hosts([hosts.HostSpec(f"{name}-{i}") for i in (1, 2, 3)])
        self.cluster: Cluster = make_cluster(name, etcd_topology="external")
        make_node(self.cluster, "control-plane", "cp-1", "10.0.0.11")  # the PKI needs one
        self.members: list[Node] = []
        for host in self.hosts:
            install_standins(host, ["systemctl"])
            node = make_node(self.cluster, "etcd", host.name, host.address, ssh_private_key=key)
            node.pin_host_key(host.host_key_type, host.host_key_base64, None)
            node.save()
            self.members.append(node)
        issue_missing(self.cluster, actor=SETUP)

    def client_files(self, directory: Path) -> list[str]:
        """etcdctl's TLS options with the panel's client certificate, written to ``directory``."""
        row = active_tree(self.cluster)[("apiserver-etcd-client", None)]
        ca = active_cas(self.cluster)["etcd/ca"]
        directory.mkdir(exist_ok=True)
        paths = {"ca.crt": ca.certificate_pem, "client.crt": row.certificate_pem}
        paths["client.key"] = row.private_key_pem
        for name, text in paths.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o600)
        return [
            f"--cacert={directory / 'ca.crt'}",
            f"--cert={directory / 'client.crt'}",
            f"--key={directory / 'client.key'}",
        ]

    def etcdctl(
        self, tls: list[str], *args: str, member: int = 0
    ) -> subprocess.CompletedProcess[str]:
        endpoint = f"https://{self.hosts[member].address}:2379"
        return subprocess.run(
            ["etcdctl", f"--endpoints={endpoint}", "--dial-timeout=2s", "--command-timeout=5s",
             *tls, *args],
            capture_output=True, text=True, timeout=20, env=ETCDCTL_ENV,
        )  # fmt: skip

    def pids(self) -> dict[str, str]:
        found = {}
        for host in self.hosts:
            pidfile = host.bind_dir("/usr/local/sbin") / ".standin" / "etcd.service.pid"
            found[host.name] = pidfile.read_text().strip() if pidfile.exists() else ""
        return found


def _launch(operator: Actor, cluster: Cluster, kind: str, **params: Any) -> Job:
    return _wait(launch_job(operator, cluster, kind, None, params))


def _healthy_members(etcd: EtcdCluster, tls: list[str]) -> list[str]:
    answer = etcd.etcdctl(tls, "endpoint", "health", "--cluster", "-w", "json")
    assert answer.returncode == 0, answer.stderr + answer.stdout
    return sorted(e["endpoint"] for e in json.loads(answer.stdout) if e["health"])


@pytest.fixture
def etcd_up(
    jobs_worker: str,
    operator: Actor,
    make_test_hosts: MakeHosts,
    ssh_client_key: str,
) -> EtcdCluster:
    etcd = EtcdCluster(make_test_hosts, ssh_client_key, f"etcd{secrets.token_hex(2)}")
    job = _launch(operator, etcd.cluster, "external-etcd")
    assert job.status == "succeeded", f"{job.explanation}: {_steps(job)}"
    return etcd


def test_external_etcd_leaves_three_healthy_members_and_a_rerun_restarts_nothing(
    etcd_up: EtcdCluster, operator: Actor, tmp_path: Path
) -> None:
    etcd = etcd_up
    tls = etcd.client_files(tmp_path / "tls")
    expected = sorted(f"https://{h.address}:2379" for h in etcd.hosts)
    assert _healthy_members(etcd, tls) == expected

    for host in etcd.hosts:
        pki = host.bind_dir("/etc/kubernetes") / "pki" / "etcd"
        assert sorted(p.name for p in pki.iterdir()) == [
            "ca.crt", "healthcheck-client.crt", "healthcheck-client.key",
            "peer.crt", "peer.key", "server.crt", "server.key",
        ]  # fmt: skip
        assert (pki / "server.key").stat().st_mode & 0o777 == 0o600
        assert (pki / "server.crt").stat().st_mode & 0o777 == 0o644
        assert not (pki / "ca.key").exists()
        unit = (host.bind_dir("/etc/systemd/system") / "etcd.service").read_text()
        assert f"--name={host.name}" in unit
        assert "--client-cert-auth" in unit and "--peer-client-cert-auth" in unit
        assert (
            "--initial-cluster="
            + ",".join(f"{h.name}=https://{h.address}:2380" for h in etcd.hosts)
            in unit
        )
        calls = standin_calls(host)
        assert ["systemctl", "daemon-reload"] in calls
        assert ["systemctl", "enable", "--now", "--no-block", "etcd"] in calls

    # Unchanged units on running members: nothing reloaded, enabled or restarted.
    pids = etcd.pids()
    before = {h.name: len(standin_calls(h)) for h in etcd.hosts}
    again = _launch(operator, etcd.cluster, "external-etcd")
    assert again.status == "succeeded", again.explanation
    assert etcd.pids() == pids
    for host in etcd.hosts:
        new = standin_calls(host)[before[host.name] :]
        assert new == [["systemctl", "is-active", "--quiet", "etcd"]]
    unit_steps = again.steps.filter(name="etcd.service")
    assert {s.message for s in unit_steps} == {"unit unchanged; etcd running"}
    assert _healthy_members(etcd, tls) == expected


def test_a_stacked_cluster_is_refused_naming_the_cluster(operator: Actor) -> None:
    cluster = make_cluster("stacked-etcd")
    make_node(cluster, "control-plane")
    with pytest.raises(InputError) as refused:
        launch_job(operator, cluster, "external-etcd", None, {})
    assert refused.value.field == "cluster"


def _data_dir_holds(needle: bytes) -> list[str]:
    found = []
    for path in Path(settings.DATA_DIR).rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path))
    return found


def test_backup_is_kept_encrypted_downloaded_by_admins_only_and_restores_the_data(
    etcd_up: EtcdCluster,
    operator: Actor,
    tmp_path: Path,
    api_client: Callable[[str | None], Any],
) -> None:
    etcd = etcd_up
    tls = etcd.client_files(tmp_path / "tls")
    canary = f"canary-{secrets.token_hex(12)}"
    assert etcd.etcdctl(tls, "put", "/before", canary).returncode == 0

    job = _launch(operator, etcd.cluster, "etcd-backup")
    assert job.status == "succeeded", f"{job.explanation}: {_steps(job)}"
    snapshot = EtcdSnapshot.objects.get(cluster=etcd.cluster)
    assert snapshot.total_keys >= 1 and snapshot.revision >= 2 and snapshot.size > 0
    # The work directory, the client key and the plain snapshot are gone from the host.
    workdir = Path(f"/var/tmp/clusterpanel-etcd-backup-{job.pk}")
    assert not workdir.exists()

    # Not in the database, not in the data directory.
    assert canary.encode() not in database_dump()
    assert _data_dir_holds(canary.encode()) == []

    url = f"/api/v1/etcd-snapshots/{snapshot.pk}/download/"
    assert api_client("operator").get(url).status_code == 403
    listed = api_client("operator").get(f"/api/v1/etcd-snapshots/?cluster={etcd.cluster.pk}")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [snapshot.pk]
    answer = api_client("admin").get(url)
    assert answer.status_code == 200
    plain = b"".join(answer.streaming_content) if answer.streaming else answer.content
    assert canary.encode() in plain  # the search above looked for something that is there
    [event] = AuditEvent.objects.filter(action="etcd.snapshot.download")
    assert event.actor_name == "admin" and event.details["snapshot"] == snapshot.pk
    assert not AuditEvent.objects.filter(action="etcd.snapshot.download", actor_name="operator")

    # After the snapshot: the key is deleted and another one written.
    assert etcd.etcdctl(tls, "del", "/before").returncode == 0
    assert etcd.etcdctl(tls, "put", "/after", "later").returncode == 0

    with pytest.raises(InputError) as refused:
        launch_job(operator, etcd.cluster, "etcd-restore", None,
                   {"snapshot": snapshot.pk, "confirm": "not-the-name"})  # fmt: skip
    assert refused.value.field == "confirm"
    restored = _launch(
        operator, etcd.cluster, "etcd-restore", snapshot=snapshot.pk, confirm=etcd.cluster.name
    )
    assert restored.status == "succeeded", f"{restored.explanation}: {_steps(restored)}"

    got = etcd.etcdctl(tls, "get", "/before", "--print-value-only", member=1)
    assert got.returncode == 0 and got.stdout.strip() == canary
    gone = etcd.etcdctl(tls, "get", "/after", "--print-value-only", member=2)
    assert gone.returncode == 0 and gone.stdout.strip() == ""
    expected = sorted(f"https://{h.address}:2379" for h in etcd.hosts)
    assert _healthy_members(etcd, tls) == expected
    for host in etcd.hosts:
        data = host.bind_dir("/var/lib/etcd")
        assert (data / f"member.before-restore-job{restored.pk}").is_dir()
        assert not (data / ".clusterpanel-restore.db").exists()
