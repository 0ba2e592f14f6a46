"""The facts recipe: its script run for real on this Linux machine, and crafted answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import facts
from nodes.recipes.plan import ClusterSpec, CommandOutput, NodeTarget, StepContext

CLUSTER = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
KEYS = {
    "hostname", "os_id", "os_version", "kernel", "architecture", "cpus", "memory_bytes",
    "swap_bytes", "swaps", "mac_addresses", "product_uuid", "ip_addresses", "cri_sockets",
    "cgroup_version", "cgroup_driver", "versions",
}  # fmt: skip


def run_script(script: str, path: str | None = None) -> str:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def section(name: str, text: str) -> str:
    return f"{facts.MARK} {name} {text.encode().hex()}\n"


def answer(*sections: str) -> str:
    return f"{facts.MARK} begin\n" + "".join(sections) + f"{facts.MARK} end\n"


def test_the_script_reads_this_machine() -> None:
    found = facts.parse_facts(run_script(facts.FACTS_SCRIPT))
    assert set(found) == KEYS
    assert found["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()
    assert found["kernel"] == os.uname().release
    assert found["architecture"] == os.uname().machine
    assert found["cpus"] == len(os.sched_getaffinity(0))
    assert isinstance(found["memory_bytes"], int) and found["memory_bytes"] > 2**20
    assert isinstance(found["swap_bytes"], int)
    os_release = Path("/etc/os-release").read_text()
    assert f"ID={found['os_id']}" in os_release
    assert all(iface != "lo" for iface in found["mac_addresses"])
    assert all(isinstance(address, str) for address in found["ip_addresses"])
    assert found["cgroup_version"] in ("v1", "v2")
    assert set(found["versions"]) == {"kubeadm", "kubelet", "kubectl", "containerd", "crictl"}
    if shutil.which("kubectl"):
        assert str(found["versions"]["kubectl"]).startswith("v1.")
    # These machines have no /sys/class/dmi: missing is None, not a crash.
    if not Path("/sys/class/dmi/id/product_uuid").exists():
        assert found["product_uuid"] is None


def test_without_ip_the_addresses_come_from_proc() -> None:
    sections = facts.parse_sections(run_script(facts.FACTS_SCRIPT), facts.FACTS_SECTIONS)
    assert "ip_addr" in sections  # this machine has ip: compare both ways of reading
    with_ip = facts.facts_from_sections(sections)["ip_addresses"]
    without = facts.facts_from_sections({k: v for k, v in sections.items() if k != "ip_addr"})
    assert set(without["ip_addresses"]) == set(with_ip)


def stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_installed_tools_are_versioned_and_their_output_cannot_inject_facts(
    tmp_path: Path,
) -> None:
    # Stand-ins for tools this machine does not have; their answers are the real tools' forms.
    # kubeadm's answer also tries to forge a section and the end of the output.
    stub(tmp_path, "kubeadm", f"printf 'v1.31.2\\n{facts.MARK} hostname 41\\n{facts.MARK} end\\n'")
    stub(tmp_path, "kubelet", "echo 'Kubernetes v1.30.5'")
    stub(tmp_path, "containerd", "echo 'containerd containerd.io 1.7.22 7f7fdf5fed64eb6a7caf99b3e'")
    stub(tmp_path, "crictl", "echo 'crictl version v1.31.1'")
    found = facts.parse_facts(run_script(facts.FACTS_SCRIPT, f"{os.environ['PATH']}:{tmp_path}"))
    assert found["versions"]["kubeadm"] == "v1.31.2"
    assert found["versions"]["kubelet"] == "v1.30.5"
    assert found["versions"]["containerd"] == "v1.7.22"
    assert found["versions"]["crictl"] == "v1.31.1"
    assert found["hostname"] == Path("/proc/sys/kernel/hostname").read_text().strip()


def test_a_value_holding_the_delimiter_stays_in_its_value() -> None:
    hostile = f"node-1\n{facts.MARK} os_release {b'ID=evil'.hex()}\n{facts.MARK} end"
    found = facts.parse_facts(
        answer(section("hostname", hostile), section("os_release", "ID=debian"))
    )
    assert found["hostname"] == "node-1"  # the first line; the rest was data, not sections
    assert found["os_id"] == "debian"


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        (answer(section("hostname", "a"), section("hostname", "b")), "twice"),
        (answer(section("password", "x")), "unknown section"),
        (answer(f"{facts.MARK} hostname zz\n"), "malformed"),
        (answer(f"{facts.MARK} hostname abc\n"), "cut short"),
        (f"{facts.MARK} begin\n" + section("hostname", "a"), "ends before"),
        ("sudo: a password is required\n", "does not hold"),
        (answer() + answer(), "begins twice"),
    ],
)
def test_a_forged_or_cut_output_is_refused(output: str, problem: str) -> None:
    with pytest.raises(facts.FactsError, match=problem):
        facts.parse_facts(output)


def test_missing_sections_are_none() -> None:
    found = facts.parse_facts(answer())
    assert set(found) == KEYS
    assert found["hostname"] is None and found["cpus"] is None and found["swap_bytes"] is None
    assert found["mac_addresses"] == {} and found["cri_sockets"] == []
    assert found["versions"] == dict.fromkeys(found["versions"])
    assert found["cgroup_driver"] == {"containerd": None, "cri-o": None, "kubelet": None}


def test_crafted_sections_are_read() -> None:
    swaps = "Filename\tType\tSize\tUsed\tPriority\n/swap.img  file  2097148  0  -2\n"
    output = answer(
        section("os_release", 'NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\n'),
        section("meminfo", "MemTotal:        4028380 kB\nSwapTotal:       2097148 kB\n"),
        section("swaps", swaps),
        section("macs", "lo 00:00:00:00:00:00\neth0 52:54:00:AB:CD:EF\ndummy0 00:00:00:00:00:00\n"),
        section("product_uuid", "8C4D0A56-1F2E-4B9B-9A3C-0123456789AB\n"),
        section(
            "cri_sockets",
            "/var/run/containerd/containerd.sock\n/run/containerd/containerd.sock\n/run/crio/crio.sock\n",
        ),
        section("cgroup_version", "v2\n"),
        section("containerd_config", "            SystemdCgroup = true\npresent\n"),
        section("crio_config", 'cgroup_manager = "cgroupfs"\npresent\n'),
        section("kubelet_config", "cgroupDriver: systemd\npresent\n"),
        section("kubectl_version", "Client Version: v1.27.1\nKustomize Version: v5.0.1\n"),
        section("ip_addr", "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n"),
    )
    found = facts.parse_facts(output)
    assert (found["os_id"], found["os_version"]) == ("ubuntu", "24.04")
    assert found["memory_bytes"] == 4028380 * 1024
    assert found["swap_bytes"] == 2097148 * 1024 and found["swaps"] == ["/swap.img"]
    assert found["mac_addresses"] == {"eth0": "52:54:00:ab:cd:ef"}
    assert found["product_uuid"] == "8c4d0a56-1f2e-4b9b-9a3c-0123456789ab"
    assert found["cri_sockets"] == [
        "unix:///var/run/containerd/containerd.sock",
        "unix:///var/run/crio/crio.sock",
    ]
    assert found["cgroup_version"] == "v2"
    assert found["cgroup_driver"] == {
        "containerd": "systemd",
        "cri-o": "cgroupfs",
        "kubelet": "systemd",
    }
    assert found["versions"]["kubectl"] == "v1.27.1"
    assert found["ip_addresses"] == ["10.0.0.5"]


def test_a_containerd_config_without_systemd_cgroup_is_cgroupfs() -> None:
    found = facts.parse_facts(answer(section("containerd_config", "version = 2\npresent\n")))
    assert found["cgroup_driver"]["containerd"] == "cgroupfs"


def test_facts_takes_no_parameters() -> None:
    assert facts.validate_params({}) == {}
    with pytest.raises(InputError, match="unknown parameter 'force'") as caught:
        facts.validate_params({"force": True})
    assert caught.value.field == "force"


def test_the_plan_is_one_read_only_step_per_node() -> None:
    nodes = [NodeTarget("cp1", "10.0.0.1", "control-plane"), NodeTarget("w1", "10.0.0.2", "worker")]
    plan = facts.plan(CLUSTER, nodes, {})
    assert facts.KIND == "facts" and facts.MUTATING is False
    assert [(p.name, [(s.name, s.node) for s in p.steps]) for p in plan.phases] == [
        ("facts", [("gather facts", "cp1"), ("gather facts", "w1")])
    ]
    preview = plan.preview()
    assert preview["phases"][0]["steps"][0]["files"] == []


def test_the_step_reads_an_answer_and_explains_a_missing_one() -> None:
    now = time.time()
    good = CommandOutput(0, answer(section("hostname", "cp1"), section("cpus", "4")), "", now, now)
    outcome = facts.read_facts(StepContext("cp1", (good,), {}))
    assert outcome.status == "succeeded" and outcome.data["cpus"] == 4
    assert outcome.message.startswith("facts gathered: cp1")
    cut = CommandOutput(None, f"{facts.MARK} begin\n", "", now, now, timed_out=True)
    outcome = facts.read_facts(StepContext("cp1", (cut,), {}))
    assert outcome == facts.read_facts(StepContext("cp1", (cut,), {}))
    assert outcome.status == "failed"
    assert outcome.message == "the script timed out (the output ends before the script finished)"
