"""The preflight recipe: its probe run for real on this machine, and each check both ways."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import facts, preflight
from nodes.recipes.plan import Check, ClusterSpec, CommandOutput, NodeTarget, Outcome, StepContext

CLUSTER = ClusterSpec("c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
CP = NodeTarget("cp1", "192.168.1.10", "control-plane")
WORKER = NodeTarget("w1", "192.168.1.20", "worker")


def good(**changes: Any) -> dict[str, Any]:
    """What a node ready for kubeadm answers."""
    found: dict[str, Any] = {
        "hostname": "cp1",
        "cpus": 4,
        "memory_bytes": 8 * 2**30,
        "swap_bytes": 0,
        "swaps": [],
        "listening_ports": [22],
        "modules": {"br_netfilter": True, "overlay": True},
        "sysctls": {
            "bridge-nf-call-iptables": "1",
            "bridge-nf-call-ip6tables": "1",
            "ip_forward": "1",
        },
        "cri_sockets": ["unix:///var/run/containerd/containerd.sock"],
        "cgroup_driver": {"containerd": "systemd", "cri-o": None, "kubelet": None},
        "clock_skew_seconds": 0.0,
        "hostname_addresses": ["192.168.1.10"],
        "versions": {"kubeadm": None, "kubelet": None, "kubectl": None},
        "mac_addresses": {"eth0": "52:54:00:00:00:01"},
        "product_uuid": "uuid-1",
        "ip_addresses": ["192.168.1.10"],
    }
    found.update(changes)
    return found


def checks(found: dict[str, Any], node: NodeTarget = CP) -> dict[str, Check]:
    return {check.name: check for check in preflight.node_checks(CLUSTER, node, found)}


def status(name: str, found: dict[str, Any], node: NodeTarget = CP) -> tuple[str, str]:
    check = checks(found, node)[name]
    return check.status, check.message


def test_a_ready_node_passes_every_check() -> None:
    found = checks(good())
    assert {c.status for c in found.values()} == {"pass"}
    assert set(found) == {
        "swap", "port-6443", "port-2379", "port-2380", "port-10250", "port-10257", "port-10259",
        "port-30000-32767", "br_netfilter", "overlay", "bridge-nf-call-iptables",
        "bridge-nf-call-ip6tables", "ip_forward", "cri-socket", "cgroup-driver", "cpus", "memory",
        "time", "hostname", "hostname-resolves", "kubeadm-version", "kubelet-version",
        "kubectl-version",
    }  # fmt: skip
    assert found["kubelet-version"].message == "kubelet is not installed yet"


def test_a_worker_checks_its_own_ports_and_no_capacity() -> None:
    found = checks(good(hostname="w1", cpus=1, listening_ports=[6443]), WORKER)
    assert "cpus" not in found and "memory" not in found and "port-6443" not in found
    assert found["port-10250"].status == "pass"
    etcd = checks(good(), NodeTarget("e1", "192.168.1.30", "etcd"))
    assert {n for n in etcd if n.startswith("port-") and n != "port-30000-32767"} == {
        "port-2379",
        "port-2380",
    }


def test_swap_on_fails() -> None:
    assert status("swap", good(swaps=["/swap.img"], swap_bytes=2 * 2**30)) == (
        "fail",
        "swap is on (/swap.img, 2.0 GiB)",
    )
    assert status("swap", good(swaps=None))[0] == "warn"


def test_a_busy_port_fails_and_a_free_one_passes() -> None:
    found = checks(good(listening_ports=[22, 6443, 31000]))
    assert (found["port-6443"].status, found["port-6443"].message) == (
        "fail",
        "port 6443 is in use",
    )
    assert found["port-10250"].status == "pass"
    assert found["port-30000-32767"].status == "warn"
    assert status("port-6443", good(listening_ports=None))[0] == "warn"


def test_missing_modules_and_unset_sysctls_fail() -> None:
    found = checks(
        good(
            modules={"br_netfilter": False, "overlay": True},
            sysctls={"bridge-nf-call-iptables": None, "ip_forward": "0"},
        )
    )
    assert found["br_netfilter"].status == "fail" and found["overlay"].status == "pass"
    assert (
        found["bridge-nf-call-iptables"].message
        == "net.bridge.bridge-nf-call-iptables is not available"
    )
    assert found["ip_forward"].message == "net.ipv4.ip_forward is 0, not 1"


@pytest.mark.parametrize(
    ("sockets", "expected"),
    [
        ([], "fail"),
        (["unix:///var/run/crio/crio.sock"], "fail"),
        (["unix:///var/run/containerd/containerd.sock", "unix:///var/run/crio/crio.sock"], "warn"),
    ],
)
def test_the_cluster_runtime_socket_must_be_there(sockets: list[str], expected: str) -> None:
    assert status("cri-socket", good(cri_sockets=sockets))[0] == expected


@pytest.mark.parametrize(
    ("drivers", "expected"),
    [
        ({"containerd": "cgroupfs", "kubelet": None}, "fail"),
        ({"containerd": "systemd", "kubelet": "cgroupfs"}, "fail"),
        ({"containerd": None, "kubelet": None}, "warn"),
        ({"containerd": "systemd", "kubelet": "systemd"}, "pass"),
    ],
)
def test_runtime_and_kubelet_must_both_use_systemd(drivers: dict[str, Any], expected: str) -> None:
    assert status("cgroup-driver", good(cgroup_driver=drivers))[0] == expected


def test_a_small_control_plane_node_fails() -> None:
    found = checks(good(cpus=1, memory_bytes=1024 * 2**20))
    assert found["cpus"].message == "1 CPU, a control-plane node needs 2"
    assert found["memory"].message == "1024 MB of memory, a control-plane node needs 1700 MB"
    assert status("memory", good(memory_bytes=1700 * 2**20))[0] == "pass"


@pytest.mark.parametrize(
    ("skew", "expected"), [(0.5, "pass"), (-4.0, "warn"), (31.0, "fail"), (None, "warn")]
)
def test_clock_skew_thresholds(skew: float | None, expected: str) -> None:
    assert status("time", good(clock_skew_seconds=skew))[0] == expected
    if skew == -4.0:
        assert status("time", good(clock_skew_seconds=skew))[1] == (
            "the clock is 4.0 s behind the panel's"
        )


def test_clock_skew_is_measured_outside_the_round_trip() -> None:
    assert preflight.clock_skew("1000.5\n", 1000.0, 1001.0) == 0.0
    assert preflight.clock_skew("1010.25\n", 1000.0, 1001.0) == pytest.approx(9.25)
    assert preflight.clock_skew("990.0", 1000.0, 1001.0) == pytest.approx(-10.0)
    assert preflight.clock_skew("%N", 1000.0, 1001.0) is None


def test_hostname_other_than_the_node_name_and_unresolvable_warn() -> None:
    assert status("hostname", good(hostname="CP1")) == ("pass", "the hostname is CP1")
    assert status("hostname", good(hostname="ubuntu"))[0] == "warn"
    assert status("hostname-resolves", good(hostname_addresses=[]))[0] == "warn"


@pytest.mark.parametrize(
    ("tool", "version", "expected"),
    [
        ("kubeadm", "v1.31.7", "pass"),
        ("kubeadm", "v1.32.0", "warn"),
        ("kubeadm", "v1.30.4", "fail"),
        ("kubelet", "v1.31.0", "pass"),
        ("kubelet", "v1.29.3", "warn"),
        ("kubelet", "v1.27.3", "fail"),
        ("kubelet", "v1.32.0", "fail"),
        ("kubectl", "v1.32.4-dispatcher", "pass"),
        ("kubectl", "v1.28.0", "warn"),
    ],
)
def test_kubernetes_version_skew(tool: str, version: str, expected: str) -> None:
    versions = {"kubeadm": None, "kubelet": None, "kubectl": None, tool: version}
    assert status(f"{tool}-version", good(versions=versions))[0] == expected


def probe_answer(*sections: tuple[str, str]) -> str:
    body = "".join(f"{facts.MARK} {name} {text.encode().hex()}\n" for name, text in sections)
    return f"{facts.MARK} begin\n{body}{facts.MARK} end\n"


def test_the_probe_reads_ports_modules_and_sysctls() -> None:
    tcp = (
        "  sl  local_address rem_address   st tx_queue\n"
        "   0: 00000000:192B 00000000:0000 0A 00000000:00000000\n"
        "   1: 0100007F:0016 0100007F:9C40 01 00000000:00000000\n"
    )
    found = preflight.parse_probe(
        probe_answer(
            ("tcp_listen", tcp + "00000000000000000000000000000000:2710 0A\n"),
            ("modules", "overlay\n"),
            ("sysctls", "net/bridge/bridge-nf-call-iptables 1\nnet/ipv4/ip_forward 0\n"),
            ("resolve", "10.0.0.5       cp1\n"),
        )
    )
    assert found["listening_ports"] == [6443, 10000]  # the connected socket on 22 is no listener
    assert found["modules"] == {
        "br_netfilter": True,
        "overlay": True,
    }  # built in: its sysctls exist
    assert found["sysctls"] == {
        "bridge-nf-call-iptables": "1",
        "bridge-nf-call-ip6tables": None,
        "ip_forward": "0",
    }
    assert found["hostname_addresses"] == ["10.0.0.5"]
    ss = preflight.parse_probe(probe_answer(("ss_listen", "LISTEN 0 4096 [::]:10250 [::]:*\n")))
    assert ss["listening_ports"] == [10250]
    assert preflight.parse_probe(probe_answer())["listening_ports"] is None


def run_probe(node: NodeTarget) -> Outcome:
    """The probe's two commands run with the local ``sh``, timed as the executor times them."""
    outputs = []
    for command in preflight.plan(CLUSTER, [node], {}).phases[0].steps[0].actions:
        assert hasattr(command, "line")
        started = time.time()
        done = subprocess.run(
            ["sh", "-c", command.line], capture_output=True, text=True, timeout=60
        )
        outputs.append(
            CommandOutput(done.returncode, done.stdout, done.stderr, started, time.time())
        )
    return preflight.read_probe(CLUSTER, node, (), StepContext(node.name, tuple(outputs), {}))


def test_the_probe_runs_on_this_machine() -> None:
    hostname = Path("/proc/sys/kernel/hostname").read_text().strip()
    outcome = run_probe(NodeTarget(hostname, "127.0.0.1", "control-plane"))
    assert outcome.status == "succeeded"
    by_name = {check.name: check for check in outcome.checks}
    assert by_name["time"].status == "pass"  # the same clock
    assert by_name["hostname"].status == "pass"
    assert by_name["cpus"].message.endswith("CPUs") or by_name["cpus"].status == "fail"
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert by_name["ip_forward"].status == ("pass" if forward == "1" else "fail")
    assert isinstance(outcome.data["listening_ports"], list)
    assert all(check.status in ("pass", "warn", "fail") for check in outcome.checks)


def probe(node: NodeTarget, **changes: Any) -> Outcome:
    found = good(**{"hostname": node.name, **changes})
    return Outcome("succeeded", "", found, tuple(preflight.node_checks(CLUSTER, node, found)))


def verdict(
    nodes: list[NodeTarget],
    outcomes: dict[str, Outcome],
    cluster: ClusterSpec = CLUSTER,
    ignored: tuple[str, ...] = (),
) -> Outcome:
    earlier = {("probe", "probe", name): outcome for name, outcome in outcomes.items()}
    return preflight.read_verdict(cluster, nodes, ignored, StepContext(None, (), earlier))


N1 = NodeTarget("node-1", "192.168.1.11", "control-plane")
N2 = NodeTarget("node-2", "192.168.1.12", "worker")


def test_the_verdict_passes_ready_nodes_and_counts_warnings() -> None:
    outcome = verdict(
        [N1, N2],
        {
            "node-1": probe(N1, product_uuid="u1", mac_addresses={"eth0": "52:54:00:00:00:01"}),
            "node-2": probe(
                N2,
                product_uuid="u2",
                mac_addresses={"eth0": "52:54:00:00:00:02"},
                clock_skew_seconds=2.0,
            ),
        },
    )
    assert outcome.status == "succeeded"
    assert outcome.message == "all checks passed on 2 nodes, 1 warning"


def test_duplicates_across_nodes_fail_naming_the_nodes() -> None:
    same = {"mac_addresses": {"eth0": "52:54:00:00:00:01"}, "product_uuid": "u1"}
    outcome = verdict(
        [N1, N2],
        {"node-1": probe(N1, **same), "node-2": probe(N2, hostname="node-1", **same)},
    )
    assert outcome.status == "failed"
    failed = {c.name: c.message for c in outcome.checks if c.status == "fail"}
    assert failed == {
        "unique-hostname": "duplicate hostname node-1 on node-1 and node-2",
        "unique-mac": "duplicate MAC address 52:54:00:00:00:01 on node-1 (eth0) and node-2 (eth0)",
        "unique-product-uuid": "duplicate product_uuid u1 on node-1 and node-2",
    }
    assert outcome.message.startswith("duplicate hostname node-1 on node-1 and node-2; ")


def test_per_node_failures_read_well_after_preflight_failed() -> None:
    outcome = verdict(
        [N1, N2],
        {
            "node-1": probe(N1, swaps=["/swap.img"], swap_bytes=2**30, product_uuid="a"),
            "node-2": probe(N2, product_uuid="b", mac_addresses={"eth0": "52:54:00:00:00:02"}),
        },
    )
    assert outcome.status == "failed"
    assert outcome.message == "swap is on (/swap.img, 1.0 GiB) on node-1"


def test_a_node_address_inside_a_subnet_and_overlapping_subnets_fail() -> None:
    cluster = ClusterSpec("c", "v1.31.2", "192.168.0.0/16", "192.168.128.0/20", "containerd")
    outcome = verdict([N1], {"node-1": probe(N1)}, cluster)
    failed = {c.name: c.message for c in outcome.checks if c.status == "fail"}
    assert failed["pod-subnet-nodes"] == (
        "the pod subnet 192.168.0.0/16 contains the address 192.168.1.11 of node-1"
    )
    assert failed["subnet-overlap"] == (
        "the pod subnet 192.168.0.0/16 overlaps the service subnet 192.168.128.0/20"
    )
    apart = verdict([N1], {"node-1": probe(N1, ip_addresses=["10.244.3.1"])})
    warned = {c.name: c.status for c in apart.checks}
    assert warned["pod-subnet-nodes"] == "warn"  # an interface (a leftover cni0), not the node
    assert warned["subnet-overlap"] == "pass"


def test_a_node_that_gave_no_answer_fails_the_verdict() -> None:
    outcome = verdict(
        [N1, N2], {"node-1": probe(N1), "node-2": Outcome("failed", "connection refused")}
    )
    assert outcome.status == "failed"
    assert "node-2 was not probed (connection refused)" in outcome.message


def test_checks_of_lists_node_checks_then_cross_node_checks() -> None:
    probes = {"node-1": probe(N1)}
    outcomes = {
        ("probe", "probe", "node-1"): probes["node-1"],
        ("verdict", "verdict", None): verdict([N1], probes),
    }
    every = preflight.checks_of(outcomes)
    assert every[0].node == "node-1" and every[-1].node is None
    assert len(every) == len(probes["node-1"].checks) + len(
        outcomes[("verdict", "verdict", None)].checks
    )


def test_the_plan_probes_every_node_then_judges() -> None:
    plan = preflight.plan(CLUSTER, [N1, N2], {})
    assert preflight.KIND == "preflight" and preflight.MUTATING is False
    assert [(p.name, p.continue_on_failure, [s.node for s in p.steps]) for p in plan.phases] == [
        ("probe", True, ["node-1", "node-2"]),
        ("verdict", False, [None]),
    ]
    with pytest.raises(InputError) as caught:
        preflight.validate_params({"x": 1})
    assert caught.value.field == "x"


# --- ignore_preflight_errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ("swap, cpus,swap", ["cpus", "swap"]),
        (["port-10259", "unique-hostname"], ["port-10259", "unique-hostname"]),
        ("all", ["all"]),
        ("ALL", ["all"]),
    ],
)
def test_the_ignored_checks_are_known_names_or_all(value: Any, expected: list[str]) -> None:
    assert preflight.validate_ignored(value, allow_all=True) == expected
    params = {} if not expected else {"ignore_preflight_errors": expected}
    assert preflight.validate_params({"ignore_preflight_errors": value}) == params


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("swap,nosuch", "'nosuch' is not a preflight check name"),
        ("Swap", "'Swap' is not a preflight check name"),
        ("swap;rm -rf /", "'swap;rm -rf /' is not a preflight check name"),
        ("port-22", "'port-22' is not a preflight check name"),
        ("probe", "probe cannot be ignored"),
        ("all,swap", "name no other check with it"),
        (3, "must be check names"),
        (["swap", 3], "must be check names"),
        (",".join(["swap"] * 41), "at most 40"),
    ],
)
def test_an_unknown_ignored_check_is_refused_naming_the_field(value: Any, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        preflight.validate_params({"ignore_preflight_errors": value})
    assert caught.value.field == "ignore_preflight_errors"
    assert reason in str(caught.value)


def test_all_is_refused_where_each_check_must_be_named() -> None:
    with pytest.raises(InputError) as caught:
        preflight.validate_ignored("all")
    assert caught.value.field == "ignore_preflight_errors"


def test_every_check_the_probe_and_the_verdict_report_can_be_named() -> None:
    """The list of names the parameter takes is exactly what the checks emit, but ``probe``."""
    external = ClusterSpec(
        "c", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd", etcd_topology="external"
    )
    emitted: set[str] = set()
    for cluster in (CLUSTER, external):
        for role in ("control-plane", "worker", "etcd"):
            node = NodeTarget("n", "192.168.1.10", role)
            emitted |= {c.name for c in preflight.node_checks(cluster, node, good())}
    answered = verdict([N1, N2], {"node-1": probe(N1), "node-2": Outcome("failed", "refused")})
    emitted |= {c.name for c in answered.checks}
    assert emitted - preflight.IGNORABLE_CHECKS == {"probe"}
    assert emitted >= preflight.IGNORABLE_CHECKS


def test_an_ignored_failure_is_a_warning_marked_ignored_and_the_verdict_passes() -> None:
    swap = {"swaps": ["/swap.img"], "swap_bytes": 2**30}
    node_1 = probe(N1, product_uuid="a", **swap)
    node_2 = probe(N2, product_uuid="b", mac_addresses={"eth0": "52:54:00:00:00:02"}, **swap)
    probes = {"node-1": node_1, "node-2": node_2}
    # Not ignored: failed as before.
    assert verdict([N1, N2], probes).status == "failed"
    # Ignored: the verdict turns the failures it finds, whether the probe did or not.
    passed = verdict([N1, N2], probes, ignored=("swap",))
    assert passed.status == "succeeded"
    assert passed.message == "all other checks passed on 2 nodes; ignored as asked: swap"
    assert passed.data["ignored"] == 2 and passed.data["ignored_checks"] == ["swap"]
    assert passed.data["failed"] == 0 and passed.data["warnings"] == 0
    # "all" ignores every failure but a node that gave no answer.
    assert verdict([N1, N2], probes, ignored=("all",)).status == "succeeded"
    silent = {"node-1": node_1, "node-2": Outcome("failed", "connection refused")}
    assert verdict([N1, N2], silent, ignored=("all",)).status == "failed"


def test_the_probe_shows_an_ignored_failure_as_kubeadm_does() -> None:
    found = good(swaps=["/swap.img"], swap_bytes=2**30)
    raw = preflight.node_checks(CLUSTER, CP, found)
    turned = {c.name: c for c in preflight.ignoring(raw, ["swap", "cpus"])}
    assert turned["swap"] == Check(
        "cp1", "swap", "warn", "swap is on (/swap.img, 1.0 GiB) (ignored)", ignored=True
    )
    # A passing check named is left alone, and turning twice changes nothing.
    assert turned["cpus"].status == "pass" and not turned["cpus"].ignored
    assert preflight.ignoring(turned.values(), ["swap"]) == tuple(turned.values())
    assert preflight._tally(tuple(turned.values())) == "1 failed but ignored"


def test_the_plans_verdict_judges_with_the_jobs_ignored_checks() -> None:
    swapped = probe(N1, swaps=["/swap.img"], swap_bytes=2**30)
    context = StepContext(None, (), {("probe", "probe", "node-1"): swapped})
    for params, expected in (({}, "failed"), ({"ignore_preflight_errors": "swap"}, "succeeded")):
        plan = preflight.plan(CLUSTER, [N1], params)
        assert plan.phases[1].steps[0].read(context).status == expected, params


def test_kubeadm_hears_the_ignored_checks_under_its_own_names() -> None:
    names = ["swap", "cpus", "memory", "cri-socket", "ip_forward", "port-10250", "overlay"]
    assert preflight.kubeadm_ignored(names) == [
        "CRI", "FileContent--proc-sys-net-ipv4-ip_forward", "Mem", "NumCPU", "Port-10250", "Swap",
    ]  # fmt: skip
    assert preflight.kubeadm_ignored(["all"]) == ["all"]
    assert preflight.kubeadm_ignored(["unique-mac", "time"]) == []
    # Every name mapped is one the panel's own checks report.
    assert set(preflight.KUBEADM_CHECK_NAMES) <= preflight.IGNORABLE_CHECKS
