"""The install job end to end: launched like the API launches it, run by a real Celery worker over
real SSH on real sshd test hosts (tests/hosts.py).

The package managers, modprobe, sysctl, swapoff, systemctl, curl and wget are recording stand-ins
(tests/standins): no package is installed, no kernel setting changed and nothing downloaded for
real; the tests assert the exact command lines the stand-ins received and the files written on
each host (its own /etc directories and /etc/fstab).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.errors import InputError
from clusterpanel.jobs.models import Job
from clusterpanel.jobs.services import launch_job
from clusterpanel.security.audit import Actor
from nodes.models import Cluster, Node
from tests import hosts, services, standins
from tests.factories import make_cluster, make_node, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lifecycle]

MakeHosts = Callable[[Sequence[hosts.HostSpec]], list[hosts.TestHost]]
TOOLS = [
    "apt-get", "apt-mark", "dpkg-query", "dnf", "rpm", "modprobe", "sysctl", "swapoff", "curl",
    "wget", "kubeadm", "kubectl", "crictl",
]  # fmt: skip
PINNED_APT = ["kubeadm=1.31.2-1.1", "kubelet=1.31.2-1.1", "kubectl=1.31.2-1.1"]
PINNED_DNF = ["kubeadm-1.31.2", "kubelet-1.31.2", "kubectl-1.31.2"]


@pytest.fixture
def operator() -> Actor:
    return Actor.for_command(make_user("install-operator", "operator"))


def _equip(host: hosts.TestHost) -> None:
    standins.install_standins(host, TOOLS)
    # Only recorded: the package stand-ins install no unit files, so the systemctl stand-in
    # that runs units (for etcd) would rightly refuse to enable containerd.
    standins.install_recorder(host, "systemctl")


def _nodes(cluster: Cluster, pairs: Sequence[tuple[hosts.TestHost, str]], key: str) -> list[Node]:
    made = []
    for host, os_id in pairs:
        node = make_node(cluster, "worker", host.name, host.address, ssh_private_key=key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.facts = {"os_id": os_id, "hostname": host.hostname}
        node.save()
        made.append(node)
    return made


def _run(operator: Actor, cluster: Cluster, **params: Any) -> Job:
    job = launch_job(operator, cluster, "install", None, params)

    def ended() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    services.wait_for(ended, 120, f"{job} to end")
    return job


def _messages(job: Job) -> dict[tuple[str, str], str]:
    return {(s.node_name, s.name): s.message for s in job.steps.all()}


def _etc(host: hosts.TestHost, path: str) -> Path:
    """The host's own copy of ``path`` (one of its bind-mounted directories or files)."""
    for mount_point in hosts.BIND_DIRS:
        if path.startswith(mount_point + "/"):
            return host.bind_dir(mount_point) / path.removeprefix(mount_point + "/")
    return host.hostdir / path.lstrip("/")


def test_install_on_an_apt_and_a_dnf_host_pins_holds_and_changes_nothing_when_run_again(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str
) -> None:
    apt_host, dnf_host = make_test_hosts([hosts.HostSpec("inst-apt"), hosts.HostSpec("inst-dnf")])
    for host in (apt_host, dnf_host):
        _equip(host)
    cluster = make_cluster("install", kubernetes_version="v1.31.2")
    _nodes(cluster, [(apt_host, "ubuntu"), (dnf_host, "rocky")], ssh_client_key)

    job = _run(operator, cluster)
    assert job.status == "succeeded", job.explanation

    apt_calls = standins.calls(apt_host)
    assert ["apt-get", "install", "-y", "-q", "--allow-change-held-packages", *PINNED_APT] in (
        apt_calls
    )
    assert ["apt-mark", "hold", "kubeadm", "kubelet", "kubectl"] in apt_calls
    assert ["apt-get", "install", "-y", "-q", "containerd"] in apt_calls
    key_url = "https://pkgs.k8s.io/core:/stable:/v1.31/deb/Release.key"
    assert [c for c in apt_calls if c[0] == "curl"] == [
        ["curl", "-fsSL", "--proto", "=https", "--retry", "3", key_url, "-o",
         "/etc/apt/keyrings/kubernetes-apt-keyring.asc"],
    ]  # fmt: skip
    assert not [c for c in apt_calls if c[0] in ("dnf", "rpm", "wget")]
    # apt-get update before each install, the hold after the pinned install.
    kube = apt_calls.index(["apt-get", "install", "-y", "-q", "--allow-change-held-packages",
                            *PINNED_APT])  # fmt: skip
    assert apt_calls[kube - 1] == ["apt-get", "update", "-q"]
    assert apt_calls.index(["apt-mark", "hold", "kubeadm", "kubelet", "kubectl"]) > kube
    assert ["sysctl", "--system"] in apt_calls
    assert ["modprobe", "--", "br_netfilter"] in apt_calls
    assert ["systemctl", "restart", "containerd"] in standins.calls(apt_host, "systemctl")

    dnf_calls = standins.calls(dnf_host)
    assert ["dnf", "install", "-y", "-q", "--disableexcludes=kubernetes", *PINNED_DNF] in dnf_calls
    assert ["dnf", "versionlock", "add", *PINNED_DNF] in dnf_calls
    assert ["dnf", "install", "-y", "-q", "dnf-command(versionlock)"] in dnf_calls
    assert ["dnf", "install", "-y", "-q", "containerd.io"] in dnf_calls
    assert not [c for c in dnf_calls if c[0] in ("apt-get", "apt-mark", "dpkg-query")]

    # The files, on each host's own /etc.
    listing = _etc(apt_host, "/etc/apt/sources.list.d/kubernetes.list").read_text()
    assert "https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /" in listing
    assert _etc(apt_host, "/etc/apt/keyrings/kubernetes-apt-keyring.asc").stat().st_size > 0
    repo = _etc(dnf_host, "/etc/yum.repos.d/kubernetes.repo").read_text()
    assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/" in repo
    for host in (apt_host, dnf_host):
        modules = _etc(host, "/etc/modules-load.d/k8s.conf")
        assert modules.read_text() == "overlay\nbr_netfilter\n"
        assert modules.stat().st_mode & 0o777 == 0o644
        assert "net.ipv4.ip_forward = 1" in _etc(host, "/etc/sysctl.d/k8s.conf").read_text()
        assert "SystemdCgroup = true" in _etc(host, "/etc/containerd/config.toml").read_text()
        fstab = _etc(host, "/etc/fstab").read_text().splitlines()
        assert fstab[-1].startswith("# /swap.img none swap sw 0 0")
        assert (standins.state(host) / "hold" / "kubelet").exists()
    assert not Path("/etc/modules-load.d/k8s.conf").exists()  # this machine's own is untouched

    # Again: every step finds its work done.
    for host in (apt_host, dnf_host):
        standins.clear_calls(host)
    mtime = _etc(apt_host, "/etc/containerd/config.toml").stat().st_mtime_ns
    again = _run(operator, cluster)
    assert again.status == "succeeded", again.explanation
    messages = _messages(again)
    for host in (apt_host, dnf_host):
        calls = standins.calls(host)
        assert not [c for c in calls if c[:2] in (["apt-get", "install"], ["dnf", "install"])]
        assert not [c for c in calls if c[:2] in (["apt-mark", "hold"], ["dnf", "versionlock"])
                    and c[2:3] == ["add"]]  # fmt: skip
        assert ["systemctl", "restart", "containerd"] not in calls
        assert not [c for c in calls if c[0] in ("curl", "wget", "swapoff")]
        assert "already installed and held" in messages[(host.name, "kubeadm, kubelet, kubectl")]
        assert "sysctls already set" in messages[(host.name, "sysctls")]
    assert _etc(apt_host, "/etc/containerd/config.toml").stat().st_mtime_ns == mtime


def _bundle(directory: Path, names: Sequence[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name in names:
        (directory / name).write_bytes(b"a stand-in package file\n")
    return directory


def test_offline_install_reaches_for_no_network_on_any_host(
    jobs_worker: str, operator: Actor, make_test_hosts: MakeHosts, ssh_client_key: str,
    test_hosts_dir: Path,
) -> None:  # fmt: skip
    bundle = _bundle(
        test_hosts_dir / "offline-bundle",
        [
            "kubeadm_1.31.2-1.1_amd64.deb", "kubelet_1.31.2-1.1_amd64.deb",
            "kubectl_1.31.2-1.1_amd64.deb", "containerd_1.7.24-1_amd64.deb",
            "cri-tools_1.31.1-1.1_amd64.deb", "kubernetes-cni_1.5.1-1.1_amd64.deb",
            "kubeadm-1.31.2-150500.1.1.x86_64.rpm", "kubelet-1.31.2-150500.1.1.x86_64.rpm",
            "kubectl-1.31.2-150500.1.1.x86_64.rpm", "containerd.io-1.7.24-3.1.el9.x86_64.rpm",
            "python3-dnf-plugin-versionlock-4.3.0-13.el9.noarch.rpm",
        ],
    )  # fmt: skip
    apt_host, dnf_host = make_test_hosts([hosts.HostSpec("off-apt"), hosts.HostSpec("off-dnf")])
    for host in (apt_host, dnf_host):
        _equip(host)
    cluster = make_cluster("offline", kubernetes_version="v1.31.2")
    _nodes(cluster, [(apt_host, "debian"), (dnf_host, "almalinux")], ssh_client_key)

    job = _run(operator, cluster, offline_bundle=str(bundle))
    assert job.status == "succeeded", job.explanation

    for host in (apt_host, dnf_host):
        calls = standins.calls(host)
        assert [c for c in calls if c[0] in ("curl", "wget")] == []
        for call in calls:
            if call[0] == "apt-get":
                assert call[1] == "install" and "--no-download" in call, call
                assert all(a.startswith(str(bundle) + "/") for a in call if a.endswith(".deb"))
                assert not [a for a in call[2:] if "=" in a], call  # nothing from a repository
            if call[0] == "dnf":
                assert "--disablerepo=*" in call, call
        assert not _etc(host, "/etc/apt/sources.list.d/kubernetes.list").exists()
        assert not _etc(host, "/etc/yum.repos.d/kubernetes.repo").exists()
    assert (standins.state(apt_host) / "pkg" / "kubeadm").read_text().strip() == "1.31.2-1.1"
    assert (standins.state(dnf_host) / "pkg" / "kubeadm").read_text().strip() == (
        "1.31.2-150500.1.1"
    )
    assert ["apt-mark", "hold", "kubeadm", "kubelet", "kubectl"] in standins.calls(apt_host)
    assert ["dnf", "versionlock", "add", "--disablerepo=*", *PINNED_DNF] in standins.calls(dnf_host)


def test_a_node_without_facts_or_a_bad_bundle_path_is_a_400_naming_it(
    operator: Actor, ssh_client_key: str
) -> None:
    cluster = make_cluster("nofacts")
    make_node(cluster, "worker", "bare", "10.9.0.1")
    with pytest.raises(InputError, match="run facts first") as error:
        launch_job(operator, cluster, "install", None, {})
    assert error.value.field == "nodes"
    with pytest.raises(InputError) as error:
        launch_job(operator, cluster, "install", None, {"offline_bundle": "bundle"})
    assert error.value.field == "offline_bundle"
    assert not Job.objects.filter(cluster=cluster).exists()
