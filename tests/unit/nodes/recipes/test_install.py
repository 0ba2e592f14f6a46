"""The install recipe's plan: steps, command lines, files and modes, apt against dnf, online
against an offline bundle. The fstab edit runs for real on a copy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import install
from nodes.recipes.plan import ClusterSpec, Command, FileWrite, NodeTarget, Plan, Step
from tests import standins

CLUSTER = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
CRIO = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "cri-o")
NODE = NodeTarget("n-1", "10.0.0.11", "control-plane")
DEBIAN = {"os_id": "debian"}
ROCKY = {"os_id": "rocky"}


def plan_for(facts: dict[str, Any] | None, cluster: ClusterSpec = CLUSTER, **params: Any) -> Plan:
    return install.plan(cluster, [NODE], params, {NODE.name: facts} if facts else {})


def steps(plan: Plan) -> dict[str, Step]:
    return {step.name: step for step in plan.phases[0].steps}


def lines(step: Step) -> str:
    return "\n".join(a.line for a in step.actions if isinstance(a, Command))


def files(plan: Plan) -> dict[str, FileWrite]:
    return {
        a.path: a for step in plan.phases[0].steps for a in step.actions if isinstance(a, FileWrite)
    }


def test_steps_in_order_and_every_file_written_only_when_it_differs() -> None:
    plan = plan_for(DEBIAN)
    assert plan.kind == "install" and install.MUTATING
    assert list(steps(plan)) == [
        "kernel modules", "sysctls", "swap off", "package repository", "container runtime",
        "kubeadm, kubelet, kubectl",
    ]  # fmt: skip
    written = files(plan)
    assert written[install.MODULES_FILE].content == b"overlay\nbr_netfilter\n"
    assert written[install.SYSCTL_FILE].content == (
        b"net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
        b"net.ipv4.ip_forward = 1\n"
    )
    assert b"SystemdCgroup = true" in written[install.CONTAINERD_CONFIG].content
    assert all(f.skip_if_identical and f.mode == 0o644 and not f.secret for f in written.values())
    modules = lines(steps(plan)["kernel modules"])
    assert "modprobe -- overlay" in modules and "modprobe -- br_netfilter" in modules
    assert "[ -d /sys/module/br_netfilter ]" in modules  # checked first
    assert "sysctl --system" in lines(steps(plan)["sysctls"])


def test_apt_pins_the_version_from_the_minors_repository_and_holds() -> None:
    plan = plan_for(DEBIAN)
    repo = steps(plan)["package repository"]
    written = files(plan)
    assert written[install.APT_LIST].content == (
        b"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] "
        b"https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /\n"
    )
    assert (
        "curl -fsSL --proto '=https' --retry 3 https://pkgs.k8s.io/core:/stable:/v1.31/deb/"
        "Release.key -o /etc/apt/keyrings/kubernetes-apt-keyring.asc" in lines(repo)
    )
    assert "[ -s /etc/apt/keyrings/kubernetes-apt-keyring.asc ]" in lines(repo)
    kube = lines(steps(plan)["kubeadm, kubelet, kubectl"])
    assert (
        "apt-get install -y -q --allow-change-held-packages kubeadm=1.31.2-1.1 "
        "kubelet=1.31.2-1.1 kubectl=1.31.2-1.1" in kube
    )
    assert "apt-mark hold kubeadm kubelet kubectl" in kube
    assert "already installed and held" in kube
    runtime = lines(steps(plan)["container runtime"])
    assert "apt-get install -y -q containerd" in runtime
    assert "systemctl restart containerd" in runtime
    assert "dnf" not in kube + runtime


def test_dnf_pins_and_versionlocks_from_the_rpm_repository() -> None:
    plan = plan_for(ROCKY)
    written = files(plan)
    repo = written[install.DNF_REPO].content.decode()
    assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/" in repo
    assert "gpgkey=file:///etc/pki/rpm-gpg/kubernetes.key" in repo
    assert "download.docker.com/linux/centos" in written[install.DNF_DOCKER_REPO].content.decode()
    kube = lines(steps(plan)["kubeadm, kubelet, kubectl"])
    assert "dnf install -y -q --disableexcludes=kubernetes kubeadm-1.31.2 kubelet-1.31.2" in kube
    assert "dnf versionlock add kubeadm-1.31.2 kubelet-1.31.2 kubectl-1.31.2" in kube
    assert "dnf install -y -q 'dnf-command(versionlock)'" in kube
    assert "apt" not in kube
    assert "dnf install -y -q containerd.io" in lines(steps(plan)["container runtime"])


def test_cri_o_comes_from_its_addon_repository_with_the_systemd_driver() -> None:
    plan = plan_for(DEBIAN, CRIO)
    written = files(plan)
    assert (
        b"pkgs.k8s.io/addons:/cri-o:/stable:/v1.31/deb/" in written[install.APT_CRIO_LIST].content
    )
    assert written[install.CRIO_CONFIG].content.endswith(b'cgroup_manager = "systemd"\n')
    assert install.CONTAINERD_CONFIG not in written
    runtime = lines(steps(plan)["container runtime"])
    assert "apt-get install -y -q cri-o" in runtime and "systemctl restart crio" in runtime


@pytest.mark.parametrize("facts", [DEBIAN, ROCKY])
def test_offline_installs_only_the_bundles_files_and_reaches_for_no_network(
    facts: dict[str, Any],
) -> None:
    plan = plan_for(facts, offline_bundle="/srv/k8s/1.31")
    assert "package repository" not in steps(plan)
    text = "\n".join(lines(step) for step in plan.phases[0].steps)
    for network in ("curl", "wget", "http", "apt-get update", "makecache"):
        assert network not in text
    suffix = "deb" if facts is DEBIAN else "rpm"
    assert f"/srv/k8s/1.31/*.{suffix}" in text
    if facts is DEBIAN:
        assert "apt-get install -y -q --no-download" in text
    else:
        assert "--disablerepo='*'" in text
        assert "dnf install -y -q --disablerepo='*'" in text
        assert "dnf-command(versionlock)" not in text
    assert not any(path.startswith(("/etc/apt/sources", "/etc/yum.repos")) for path in files(plan))


def test_missing_facts_and_bad_params_are_refused_by_name() -> None:
    with pytest.raises(InputError, match="run facts first") as error:
        plan_for(None)
    assert error.value.field == "nodes"
    with pytest.raises(InputError, match="arch"):
        plan_for({"os_id": "arch"})
    for bad in ("relative/dir", "/a/../b", "/a;rm -rf /", 7, "/" + "a" * 2000):
        with pytest.raises(InputError) as error:
            install.validate_params({"offline_bundle": bad})
        assert error.value.field == "offline_bundle"
    with pytest.raises(InputError) as error:
        install.validate_params({"bundle": "/x"})
    assert error.value.field == "bundle"
    assert install.validate_params({"offline_bundle": "/srv//k8s/"}) == {
        "offline_bundle": "/srv/k8s"
    }
    assert install.validate_params({}) == {}


def test_the_fstab_edit_comments_swap_lines_once(tmp_path: Path) -> None:
    fstab = tmp_path / "fstab"
    original = (
        "# comment swap\n/dev/vda1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"
        "UUID=1234\tnone\tswap\tdefaults\t0\t0\n#/old none swap sw 0 0\n"
    )
    fstab.write_text(original)
    script = install._SWAP.replace("/etc/fstab", str(fstab))
    # The stand-ins' directory first: a swapoff here would be the stand-in, never the real one.
    stand = tmp_path / "bin"

    class Dir:
        def bind_dir(self, mount_point: str) -> Path:
            return stand

    standins.install_standins(Dir(), ["swapoff"])
    env = {**os.environ, "PATH": f"{stand}:{os.environ['PATH']}"}
    for _ in range(2):
        done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    after = fstab.read_text().splitlines()
    assert after[:2] == ["# comment swap", "/dev/vda1 / ext4 defaults 0 1"]
    assert after[2] == "# /swap.img none swap sw 0 0 " + install._SWAP_NOTE
    assert after[3].startswith("# UUID=1234\tnone\tswap")
    assert after[4] == "#/old none swap sw 0 0"
    assert "no swap line in" in done.stdout
