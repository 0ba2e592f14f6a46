"""The upgrade recipe as plain data: skew verdicts, batching, the command lines and their order."""

from __future__ import annotations

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import upgrade
from nodes.recipes.etcd_backup import PanelClient
from nodes.recipes.plan import ClusterSpec, Command, CommandOutput, NodeTarget, StepContext

CLUSTER = ClusterSpec("prod", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
CP = [NodeTarget(f"cp-{i}", f"10.0.0.1{i}", "control-plane") for i in (1, 2)]
WORKERS = [NodeTarget(f"w-{i}", f"10.0.0.2{i}", "worker") for i in range(1, 6)]
KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


def _upgrade(**overrides: object) -> upgrade.Upgrade:
    fields: dict[str, object] = {
        "control_planes": tuple(CP),
        "workers": tuple(WORKERS),
        "etcd_members": tuple(CP),
        "managers": {n.name: "apt" for n in [*CP, *WORKERS]},
        "client": PanelClient(b"CA", b"CERT", b"KEY"),
        "stamp": "20250102T030405Z",
    }
    fields.update(overrides)
    return upgrade.Upgrade(**fields)  # type: ignore[arg-type]


def test_the_skew_policy_allows_one_minor_up_and_refuses_the_rest_naming_version() -> None:
    assert upgrade.skew_verdict("v1.31.2", "v1.32.0") == (
        "v1.31.2 → v1.32.0: one minor version up, allowed"
    )
    assert "patch release" in upgrade.skew_verdict("1.31.2", "1.31.5")
    refusals = {
        ("v1.30.4", "v1.32.0"): "v1.32.0 skips a minor version: kubeadm upgrades one minor at a "
        "time, v1.30 → v1.31; upgrade to v1.31 first",
        ("v1.32.0", "v1.31.0"): "v1.31.0 is older than the cluster's v1.32.0: kubeadm does not "
        "downgrade",
        ("v1.31.2", "1.31.2"): "the cluster already runs v1.31.2: there is nothing to upgrade",
        ("v1.31.2", "v2.0.0"): "v2.0.0 skips a minor version",
    }
    for (current, target), message in refusals.items():
        with pytest.raises(InputError) as refused:
            upgrade.skew_verdict(current, target)
        assert refused.value.field == "version"
        assert message in str(refused.value)
    with pytest.raises(InputError) as bad:
        upgrade.validate_params({"version": "latest"})
    assert bad.value.field == "version"


def test_params_default_and_normalise_the_version() -> None:
    assert upgrade.validate_params({"version": "1.32.0"}) == {
        "version": "v1.32.0", "batch_percent": 20, "grace_period": -1, "drain_timeout": 300,
        "drain_retries": 1,
    }  # fmt: skip
    for name, value in (("batch_percent", 0), ("drain_retries", 11), ("bogus", 1)):
        with pytest.raises(InputError) as refused:
            upgrade.validate_params({"version": "v1.32.0", name: value})
        assert refused.value.field == name


def test_no_kubelet_newer_than_the_target_nor_more_than_three_minors_older() -> None:
    target = (1, 32, 0)
    assert upgrade.kubelet_problems({"a": "v1.31.2", "b": "v1.29.0", "c": ""}, target) == []
    assert upgrade.kubelet_problems({"a": "v1.33.0", "b": "v1.28.9"}, target) == [
        "the kubelet of a is v1.33.0, newer than v1.32.0",
        "the kubelet of b is v1.28.9, more than three minor versions older than v1.32.0",
    ]
    with pytest.raises(InputError, match="never newer than the API server") as refused:
        upgrade.plan(CLUSTER, _upgrade(kubelets={"w-1": "v1.33.0"}), {"version": "v1.32.0"})
    assert refused.value.field == "version"


def test_workers_go_in_batches_of_a_percentage_at_least_one() -> None:
    sizes = [[len(b) for b in upgrade.batches(WORKERS[:n], p)] for n, p in
             ((5, 20), (2, 20), (5, 40), (5, 100), (1, 20), (0, 20))]  # fmt: skip
    assert sizes == [[1, 1, 1, 1, 1], [1, 1], [2, 2, 1], [5], [1], []]


def _order(plan: upgrade.Plan) -> list[tuple[str, str, str | None]]:
    return [(p.name, s.name, s.node) for p in plan.phases for s in p.steps]


def test_the_plan_checks_backs_up_then_upgrades_control_plane_first_and_workers_in_batches() -> (
    None
):
    plan = upgrade.plan(CLUSTER, _upgrade(), {"version": "1.32.0", "batch_percent": 40})
    phases = [p.name for p in plan.phases]
    assert phases[:9] == [
        "plan", "health", "etcd snapshot", "backup", "packages", "kubeadm on cp-1",
        "upgrade plan on cp-1", "upgrade apply on cp-1", "kubeadm on cp-2",
    ]  # fmt: skip
    assert phases[9:15] == [
        "upgrade node on cp-2", "control plane cp-1: drain", "control plane cp-1: kubelet",
        "control plane cp-1: ready", "control plane cp-1: uncordon", "control plane cp-2: drain",
    ]  # fmt: skip
    assert phases[18:24] == [
        "workers 1/3: kubeadm", "workers 1/3: drain", "workers 1/3: kubelet", "workers 1/3: ready",
        "workers 1/3: uncordon", "workers 2/3: kubeadm",
    ]  # fmt: skip
    assert phases[-1] == "verify"
    steps = _order(plan)
    assert steps[0] == ("plan", "v1.31.2 → v1.32.0: one minor version up, allowed", None)
    summary = plan.phases[0].steps[0].read(StepContext(None, (), {}))
    assert "workers 1/3: w-1, w-2; workers 2/3: w-3, w-4; workers 3/3: w-5" in summary.message
    assert ("workers 1/3: drain", "cordon and drain w-1, w-2", "cp-1") in steps
    lines: dict[tuple[str, str | None], list[str]] = {}
    for phase in plan.phases:
        for step in phase.steps:
            lines.setdefault((phase.name, step.node), []).extend(
                a.line for a in step.actions if isinstance(a, Command)
            )
    assert lines[("upgrade plan on cp-1", "cp-1")][0].endswith("kubeadm upgrade plan v1.32.0\n")
    apply = lines[("upgrade apply on cp-1", "cp-1")][0]
    assert apply.endswith("kubeadm upgrade apply v1.32.0 --yes\n")
    assert lines[("upgrade node on cp-2", "cp-2")][0].endswith("kubeadm upgrade node\n")
    everything = "\n".join(line for group in lines.values() for line in group)
    assert "--force" not in everything and "ignore-preflight-errors" not in everything
    kubeadm = lines[("kubeadm on cp-1", "cp-1")]
    assert "apt-get install -y -q --allow-change-held-packages kubeadm=1.32.0-1.1\n" in kubeadm[0]
    assert "apt-mark hold kubeadm\n" in kubeadm[0]
    assert kubeadm[1].endswith("kubeadm version -o short\n")
    kubelet = lines[("workers 1/3: kubelet", "w-1")]
    assert "--allow-change-held-packages kubelet=1.32.0-1.1 kubectl=1.32.0-1.1\n" in kubelet[0]
    assert kubelet[1].endswith("systemctl daemon-reload && systemctl restart kubelet\n")
    drain = lines[("workers 1/3: drain", "cp-1")][0]
    assert (f'{KUBECTL} drain "$n" --ignore-daemonsets --delete-emptydir-data --grace-period=-1 '
            "--timeout=300s") in drain  # fmt: skip
    assert f"{KUBECTL} uncordon w-1 w-2; exit 1" in drain
    drain_step = plan.phases[phases.index("workers 1/3: drain")].steps[0]
    assert drain_step.actions[0].timeout > 2 * 2 * 300  # type: ignore[union-attr]
    assert lines[("workers 1/3: uncordon", "cp-1")][0].endswith(f"{KUBECTL} uncordon w-1 w-2\n")
    snapshot = lines[("etcd snapshot", "cp-1")]
    assert "/etc/kubernetes/backup/20250102T030405Z-pre-upgrade/snapshot.db" in snapshot[1]
    livez = "".join(lines[("health", "cp-1")])
    assert f"{KUBECTL} --server https://10.0.0.12:6443 get --raw /livez\n" in livez
    assert any("apt-cache madison kubeadm" in line for line in lines[("packages", "w-3")])


def test_a_drain_blocked_by_a_disruption_budget_names_the_node_and_its_pods() -> None:
    stderr = (
        'error when evicting pods/"web-0" -n "shop" (will retry after 5s): Cannot evict pod as '
        "it would violate the pod's disruption budget.\n"
        'error when evicting pods/"web-0" -n "shop" (will retry after 5s): Cannot evict pod as '
        "it would violate the pod's disruption budget.\n"
    )
    out = CommandOutput(1, "clusterpanel: w-1 drained\nclusterpanel-drain-failed:w-2\n", stderr,
                        0, 1)  # fmt: skip
    outcome = upgrade.read_drain(StepContext("cp-1", (out,), {}))
    assert outcome.status == "failed"
    assert outcome.message.startswith(
        "the drain of w-2 is blocked by a PodDisruptionBudget: shop/web-0 cannot be evicted; "
        "w-2 uncordoned"
    )
