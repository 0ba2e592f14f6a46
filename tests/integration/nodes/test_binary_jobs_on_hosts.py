"""The jobs of a binary-installed cluster end to end on three shared test hosts (two control-plane
nodes with stacked etcd, one worker): launched like the API launches them, run by a real Celery
worker over real SSH.

The Kubernetes and etcd binaries are stand-ins packed in small release tarballs the test builds
(the services sleep; ``etcdctl`` and ``kubectl`` answer healthy and log each probe with its time
to ``/opt/kubernetes/probes.log``), as are the nodes' files (fake units and certificates, through
``tests.binary_sources``). ``systemctl`` is the stand-in that runs a unit's ExecStart and keeps a
timed journal of its calls (the hosts share this machine's clock, so calls on several hosts can
be ordered); ``useradd`` is a stand-in (the hosts' /etc/passwd is a bind-mounted file), curl and
wget record calls, and none may be made. tar, sha256sum and install are the real tools.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, ClusterFlavor, Node
from nodes.recipes.binary_common import NodeFile
from tests import binary_sources, hosts, services, standins
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

VERSION = "v1.31.2"
ETCD_VERSION = "v3.5.16"
CNI_VERSION = "v1.5.1"
K8S_TARBALL = f"kubernetes-server-{VERSION}-linux-amd64.tar.gz"
ETCD_TARBALL = f"etcd-{ETCD_VERSION}-linux-amd64.tar.gz"
CNI_TARBALL = f"cni-plugins-linux-amd64-{CNI_VERSION}.tgz"
CP_SERVICES = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy",
)  # fmt: skip
GROUP = {
    "etcd": 0, "kube-apiserver": 1, "kube-controller-manager": 2, "kube-scheduler": 2,
    "kubelet": 3, "kube-proxy": 3,
}  # fmt: skip
SERVICE = "#!/bin/sh\n# Stand-in for {name}: runs until stopped.\nexec sleep 86400\n"
PROBE = (
    "#!/bin/sh\n# Stand-in for {name}: healthy, each call logged with its time.\n"
    'echo "$(date +%s.%N) {name} $*" >> /opt/kubernetes/probes.log\necho {answer}\n'
)
TOOLS = ["systemctl", "useradd", "curl", "wget"]


def _script(name: str) -> bytes:
    if name == "etcdctl":
        return PROBE.format(name=name, answer="'127.0.0.1:2379 is healthy'").encode()
    if name == "kubectl":
        return PROBE.format(name=name, answer="ok").encode()
    return SERVICE.format(name=name).encode()


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), 0o755
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _bundle_files() -> dict[str, bytes]:
    kube = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet",
            "kube-proxy")  # fmt: skip
    return {
        K8S_TARBALL: _tarball({f"kubernetes/server/bin/{n}": _script(n) for n in kube}),
        ETCD_TARBALL: _tarball(
            {f"etcd-{ETCD_VERSION}-linux-amd64/{n}": _script(n) for n in ("etcd", "etcdctl")}
        ),
        CNI_TARBALL: _tarball({f"./{n}": b"#!/bin/sh\n" for n in ("bridge", "host-local")}),
    }


def _write_bundle(files: dict[str, bytes], wrong: str | None = None) -> None:
    directory = Path(settings.CLUSTERPANEL_BINARY_BUNDLE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    sums = []
    for name, content in files.items():
        (directory / name).write_bytes(content)
        digest = hashlib.sha256(b"tampered" if name == wrong else content).hexdigest()
        sums.append(f"{digest}  {name}\n")
    (directory / "SHA256SUMS").write_text("".join(sums))


def _node_files(services_: tuple[str, ...], serial: str) -> list[NodeFile]:
    files = [
        NodeFile("/etc/k8s/ssl/ca.pem", b"fake ca\n", 0o644),
        NodeFile("/etc/k8s/ssl/kubelet-client.pem", f"fake cert {serial}\n".encode(), 0o644),
        NodeFile("/etc/k8s/ssl/kubelet-client-key.pem", f"fake key {serial}\n".encode(), 0o640),
    ]
    for service in services_:
        unit = (
            f"[Unit]\nDescription={service}\n\n[Service]\n"
            f"ExecStart=/opt/kubernetes/bin/{service} --config=/etc/k8s/{service}.yaml\n"
            "Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
        )
        files.append(NodeFile(f"/etc/systemd/system/{service}.service", unit.encode(), 0o644))
    return files


@dataclass
class Binary:
    cluster: Cluster
    nodes: list[Node]
    hosts: list[hosts.TestHost]
    actor: Actor

    def services(self, node: Node) -> tuple[str, ...]:
        return CP_SERVICES if node.role == "control-plane" else ("kubelet", "kube-proxy")

    def files(self, serial: str) -> None:
        for node in self.nodes:
            binary_sources.write_node_files(
                self.cluster, node, _node_files(self.services(node), serial)
            )

    def run(self, kind: str, **params: object) -> Job:
        job = launch_job(self.actor, self.cluster, kind, None, params)

        def ended() -> bool:
            job.refresh_from_db()
            return job.is_terminal

        services.wait_for(ended, 120, f"{job} to end")
        return job


def _state(host: hosts.TestHost) -> Path:
    return host.bind_dir("/usr/local/sbin") / ".standin"


def _journal(binary: Binary) -> list[tuple[float, str, list[str]]]:
    """Every systemctl call on the hosts, in time order: (time, host name, arguments)."""
    found = []
    for host in binary.hosts:
        path = _state(host) / "journal"
        for line in path.read_text().splitlines() if path.exists() else ():
            stamp, _, args = line.partition(" ")
            found.append((float(stamp), host.name, args.split()))
    return sorted(found)


def _probes(host: hosts.TestHost) -> list[tuple[float, str]]:
    path = host.bind_dir("/opt/kubernetes") / "probes.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(float(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in lines]


def _uid(host: hosts.TestHost) -> int:
    """The service user's uid on ``host`` (its own /etc/passwd)."""
    for line in (host.hostdir / "etc/passwd").read_text().splitlines():
        if line.startswith("kube:"):
            return int(line.split(":")[2])
    raise AssertionError(f"no user kube on {host.name}")


def _clean(host: hosts.TestHost) -> None:
    """What these tests leave on a shared host: running stand-in services, the layout's files,
    the units, the service user and the stand-ins' state."""
    state = _state(host)
    for pidfile in state.glob("*.pid") if state.exists() else ():
        with contextlib.suppress(ValueError, ProcessLookupError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state, ignore_errors=True)
    for mount_point in ("/opt/kubernetes", "/etc/k8s", "/opt/cni"):
        for child in host.bind_dir(mount_point).iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    etcd_dir = host.bind_dir("/var/lib/etcd")
    os.chown(etcd_dir, 0, 0)
    etcd_dir.chmod(0o755)
    for unit in host.bind_dir("/etc/systemd/system").glob("*.service"):
        if unit.stem in CP_SERVICES:
            unit.unlink()
    for name in ("etc/passwd", "etc/group"):
        path = host.hostdir / name
        path.write_text(
            "".join(
                line for line in path.read_text().splitlines(True) if not line.startswith("kube:")
            )
        )
    standins.clear_calls(host)


@pytest.fixture
def binary(
    jobs_worker: str, test_hosts: list[hosts.TestHost], ssh_client_key: str
) -> Iterator[Binary]:
    chosen = test_hosts[:3]
    for host in chosen:
        _clean(host)
        standins.install_standins(host, TOOLS)
    cluster = make_cluster("binary", kubernetes_version=VERSION, flavor=ClusterFlavor.BINARY)
    nodes = []
    for host, role in zip(chosen, ("control-plane", "control-plane", "worker"), strict=True):
        node = make_node(cluster, role, host.name, host.address, ssh_private_key=ssh_client_key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
        nodes.append(node)
    made = Binary(cluster, nodes, chosen, Actor.for_command(make_user("bin-admin", "admin")))
    made.files("1")
    try:
        yield made
    finally:
        binary_sources.forget(cluster)
        shutil.rmtree(settings.CLUSTERPANEL_BINARY_BUNDLE_DIR, ignore_errors=True)
        for host in chosen:
            _clean(host)


def test_install_checks_the_bundle_first_then_start_enables_the_units_in_dependency_order(
    binary: Binary,
) -> None:
    files = _bundle_files()
    # A tarball that does not match SHA256SUMS: the job fails naming it, nothing reaches a host.
    _write_bundle(files, wrong=ETCD_TARBALL)
    sent = [len(h.received_commands()) for h in binary.hosts]
    job = binary.run("binary-install")
    assert job.status == "failed"
    assert f"{ETCD_TARBALL} does not match SHA256SUMS" in job.explanation
    assert [len(h.received_commands()) for h in binary.hosts] == sent

    _write_bundle(files)
    job = binary.run("binary-install")
    assert job.status == "succeeded", job.explanation
    cp, worker = binary.hosts[0], binary.hosts[2]
    assert sorted(p.name for p in (cp.bind_dir("/opt/kubernetes") / "bin").iterdir()) == [
        "etcd", "etcdctl", "kube-apiserver", "kube-controller-manager", "kube-proxy",
        "kube-scheduler", "kubectl", "kubelet",
    ]  # fmt: skip
    assert sorted(p.name for p in (worker.bind_dir("/opt/kubernetes") / "bin").iterdir()) == [
        "kube-proxy", "kubelet",
    ]  # fmt: skip
    for host in binary.hosts:
        installed = host.bind_dir("/opt/kubernetes") / "bin" / "kubelet"
        assert installed.stat().st_mode & 0o777 == 0o755
        assert (host.bind_dir("/opt/cni") / "bin" / "bridge").stat().st_mode & 0o777 == 0o755
        assert not (host.bind_dir("/opt/kubernetes") / "staging").exists()
        assert ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                "kube"] in standins.calls(host)  # fmt: skip
        assert "kube:" in (host.hostdir / "etc/passwd").read_text()
        commands = "\n".join(host.received_commands())
        assert "sha256sum -c --strict SHA256SUMS" in commands
    # etcd's data directory is the service user's; the worker got no etcd tarball.
    etcd_dir = cp.bind_dir("/var/lib/etcd")
    assert (etcd_dir.stat().st_mode & 0o777, etcd_dir.stat().st_uid) == (0o700, _uid(cp))
    assert ETCD_TARBALL not in "\n".join(worker.received_commands())

    job = binary.run("binary-distribute-pki")
    assert job.status == "succeeded", job.explanation
    key = cp.bind_dir("/etc/k8s") / "ssl" / "kubelet-client-key.pem"
    assert key.read_bytes() == b"fake key 1\n" and key.stat().st_mode & 0o777 == 0o640
    gid = next(
        int(line.split(":")[2])
        for line in (cp.hostdir / "etc/group").read_text().splitlines()
        if line.startswith("kube:")
    )
    assert (key.stat().st_uid, key.stat().st_gid) == (0, gid)

    job = binary.run("binary-start", wait_seconds=20)
    assert job.status == "succeeded", job.explanation
    journal = _journal(binary)
    enables = [(h, a[-1]) for _, h, a in journal if a[:2] == ["enable", "--now"]]
    assert sorted(enables) == sorted(
        [(h.name, s) for h in binary.hosts[:2] for s in CP_SERVICES]
        + [(worker.name, "kubelet"), (worker.name, "kube-proxy")]
    )
    # Group by group across the hosts: every etcd before any apiserver, and so on.
    assert [GROUP[s] for _, s in enables] == sorted(GROUP[s] for _, s in enables)
    # On each host, every enable is waited for (is-active) before the next enable.
    for host in binary.hosts:
        mine = [a for _, h, a in journal if h == host.name and a[0] in ("enable", "is-active")]
        for index, args in enumerate(mine):
            if args[0] == "enable":
                assert mine[index + 1] == ["is-active", "--quiet", args[-1]], mine
    # The apiserver was enabled only once etcd answered healthy on both members.
    first_api = min(
        t for t, _, a in journal if a[:2] == ["enable", "--now"] and a[-1] == "kube-apiserver"
    )
    for host in binary.hosts[:2]:
        health = [
            t
            for t, line in _probes(host)
            if line.startswith("etcdctl") and "endpoint health" in line
        ]
        assert health and min(health) < first_api
        livez = [t for t, line in _probes(host) if "get --raw /livez" in line]
        assert livez and f"--server=https://{host.address}:6443" in _probes(host)[-1][1]
    for host in binary.hosts:
        assert not standins.calls(host, "curl", "wget")

    # A unit that does not come up stops the start there: kubelet and kube-proxy are not enabled.
    (_state(binary.hosts[1]) / "inactive").mkdir()
    (_state(binary.hosts[1]) / "inactive" / "kube-scheduler.service").touch()
    since = _journal(binary)[-1][0]
    job = binary.run("binary-start", wait_seconds=5)
    assert job.status == "failed"
    failed = job.steps.get(status="failed")
    assert (failed.node_name, failed.phase) == (
        binary.hosts[1].name,
        "start kube-controller-manager kube-scheduler",
    )
    assert "kube-scheduler did not become active within 5s" in failed.message
    later = [a for t, _, a in _journal(binary) if t > since and a[:2] == ["enable", "--now"]]
    assert later and not [a for a in later if a[-1] in ("kubelet", "kube-proxy")]


def test_rollout_restarts_one_node_at_a_time_each_healthy_before_the_next(binary: Binary) -> None:
    # The binaries as binary-install leaves them (placed directly: that job is tested above).
    for host, node in zip(binary.hosts, binary.nodes, strict=True):
        bin_dir = host.bind_dir("/opt/kubernetes") / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name in (*binary.services(node), "etcdctl", "kubectl"):
            (bin_dir / name).write_bytes(_script(name))
            (bin_dir / name).chmod(0o755)
        # And the certificates as binary-distribute-pki left them.
        ssl = host.bind_dir("/etc/k8s") / "ssl"
        ssl.mkdir(parents=True, exist_ok=True)
        for file in _node_files((), "1"):
            (ssl / Path(file.path).name).write_bytes(file.content)
    job = binary.run("binary-start", wait_seconds=20)
    assert job.status == "succeeded", job.explanation
    since = _journal(binary)[-1][0]

    binary.files("2")  # renewed certificates
    job = binary.run("binary-cert-rollout", wait_seconds=20)
    assert job.status == "succeeded", job.explanation
    cp1, cp2, worker = binary.hosts
    journal = [(t, h, a) for t, h, a in _journal(binary) if t > since]
    restarts = [(h, a[1]) for _, h, a in journal if a[0] == "restart"]
    kube = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"]
    assert restarts == [
        (cp1.name, "etcd"),
        (cp2.name, "etcd"),
        *[(cp1.name, s) for s in kube],
        *[(cp2.name, s) for s in kube],
        (worker.name, "kubelet"),
        (worker.name, "kube-proxy"),
    ]

    def at(host: hosts.TestHost, verb: str, unit: str) -> list[float]:
        return [t for t, h, a in journal if h == host.name and a[0] == verb and a[-1] == unit]

    # The second member restarts only after the first answered healthy again, with both
    # members healthy (the quorum check names both endpoints) just before.
    first_health = [
        t for t, line in _probes(cp1) if t > at(cp1, "restart", "etcd")[0]
        and "endpoint health" in line and f"https://{cp1.address}:2379 " in line + " "
    ]  # fmt: skip
    assert first_health and max(first_health) < at(cp2, "restart", "etcd")[0]
    quorum = [
        t for t, line in _probes(cp2)
        if f"https://{cp1.address}:2379,https://{cp2.address}:2379" in line
    ]  # fmt: skip
    assert quorum and max(quorum) < at(cp2, "restart", "etcd")[0]
    # Node 2's first Kubernetes restart comes after node 1's last unit was active again.
    assert max(at(cp1, "is-active", "kube-proxy")) < at(cp2, "restart", "kube-apiserver")[0]
    livez = [
        t
        for t, line in _probes(cp1)
        if "/livez" in line and t > at(cp1, "restart", "kube-apiserver")[0]
    ]
    assert livez and max(livez) < at(cp1, "restart", "kube-controller-manager")[0]
    assert max(at(cp2, "is-active", "kube-proxy")) < at(worker, "restart", "kubelet")[0]

    # The renewed files are in place; the replaced ones kept in the dated backup.
    cert = cp1.bind_dir("/etc/k8s") / "ssl" / "kubelet-client.pem"
    assert cert.read_bytes() == b"fake cert 2\n"
    (backup,) = (cp1.bind_dir("/etc/k8s") / "backup").iterdir()
    assert (backup / "etc/k8s/ssl/kubelet-client.pem").read_bytes() == b"fake cert 1\n"
    assert not (backup / "etc/k8s/ssl/ca.pem").exists()  # unchanged: neither backed up nor written
    for host in binary.hosts:
        assert not standins.calls(host, "curl", "wget")
