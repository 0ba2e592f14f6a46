"""The remove-node recipe as plain data: its checks, command lines and their order."""

from __future__ import annotations

import subprocess

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import remove_node
from nodes.recipes.etcd_backup import PanelClient
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    CommandOutput,
    FileWrite,
    NodeTarget,
    StepContext,
)

STACKED = ClusterSpec("prod", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")
EXTERNAL = ClusterSpec(
    "prod", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd", etcd_topology="external"
)
CP = [NodeTarget(f"cp-{i}", f"10.0.0.1{i}", "control-plane") for i in (1, 2, 3)]
WORKER = NodeTarget("w-1", "10.0.0.21", "worker")
ETCD = [NodeTarget(f"etcd-{i}", f"10.0.0.3{i}", "etcd") for i in (1, 2, 3)]
CLIENT = PanelClient(b"CA", b"CERT", b"KEY")
DEFAULTS = {"drain_timeout": 300, "grace_period": -1, "force": False}


def _lines(plan: remove_node.Plan) -> list[tuple[str, str | None, str]]:
    return [
        (phase.name, step.node, action.line)
        for phase in plan.phases
        for step in phase.steps
        for action in step.actions
        if isinstance(action, Command)
    ]


def test_params_default_and_refuse_by_name() -> None:
    assert remove_node.validate_params({}) == DEFAULTS
    assert remove_node.validate_params(
        {"drain_timeout": "", "grace_period": "-1", "force": "true"}
    ) == {**DEFAULTS, "force": True}
    refusals = [
        ({"drain_timeout": 0}, "drain_timeout"),
        ({"grace_period": -2}, "grace_period"),
        ({"force": "yes"}, "force"),
        ({"bogus": 1}, "bogus"),
    ]
    for params, field in refusals:
        with pytest.raises(InputError) as refused:
            remove_node.validate_params(params)
        assert refused.value.field == field


def test_quorum_is_a_majority_of_the_current_members() -> None:
    assert [n for n in range(1, 8) if remove_node.quorum_kept(n)] == [3, 4, 5, 6, 7]


def test_the_last_control_plane_node_and_a_quorum_breaking_member_are_refused() -> None:
    last = remove_node.Removal(CP[0], None, (CP[0],), (CP[0],))
    with pytest.raises(InputError, match="last control-plane node") as refused:
        remove_node.plan(STACKED, last, {}, CLIENT, "/var/tmp/w")
    assert refused.value.field == "nodes"
    two = remove_node.Removal(CP[1], CP[0], tuple(CP[:2]), tuple(CP[:2]))
    with pytest.raises(InputError, match="1 of its 2 members, not a majority"):
        remove_node.plan(STACKED, two, {}, CLIENT, "/var/tmp/w")
    external = remove_node.Removal(ETCD[0], None, (), tuple(ETCD[:2]))
    with pytest.raises(InputError, match="lose quorum"):
        remove_node.plan(EXTERNAL, external, {}, CLIENT, "/var/tmp/w")
    # Workers are no etcd members: one control-plane node is enough.
    worker = remove_node.Removal(WORKER, CP[0], (CP[0],), (CP[0],))
    assert remove_node.plan(STACKED, worker, {}, None, "/var/tmp/w").phases


def test_a_worker_is_drained_reset_deleted_and_cleaned_in_that_order() -> None:
    removal = remove_node.Removal(WORKER, CP[0], tuple(CP), tuple(CP))
    plan = remove_node.plan(
        STACKED, removal, {"drain_timeout": 600, "grace_period": 30}, None, "/var/tmp/w"
    )
    assert [p.name for p in plan.phases] == ["drain", "reset", "delete", "clean-up"]
    lines = _lines(plan)
    kubectl = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
    drain = lines[0]
    assert drain[:2] == ("drain", "cp-1")
    assert f"{kubectl} cordon w-1 || exit 1" in drain[2]
    assert (
        f"{kubectl} drain w-1 --ignore-daemonsets --delete-emptydir-data --grace-period=30 "
        "--timeout=600s"
    ) in drain[2]
    assert f"{kubectl} uncordon w-1" in drain[2]  # a failed drain uncordons
    assert plan.phases[0].steps[0].actions[0].timeout > 600 + 30  # type: ignore[union-attr]
    assert lines[1][:2] == ("reset", "w-1") and "kubeadm reset -f" in lines[1][2]
    assert lines[2][:2] == ("delete", "cp-1")
    assert f"{kubectl} delete node w-1 --ignore-not-found" in lines[2][2]
    assert lines[3][:2] == ("clean-up", "w-1")
    assert "/etc/cni/net.d /var/lib/kubelet" in lines[3][2]
    assert "--force" not in " ".join(line for _, _, line in lines)


def test_force_goes_on_after_a_failed_drain_and_marks_it() -> None:
    removal = remove_node.Removal(WORKER, CP[0], tuple(CP), tuple(CP))
    step = remove_node.plan(STACKED, removal, {"force": True}, None, "/w").phases[0].steps[0]
    line = step.actions[0].line  # type: ignore[union-attr]
    assert "uncordon" not in line and "exit 1\n" not in line.split("then echo")[1]
    out = CommandOutput(
        0, f"{remove_node.DRAIN_FAILED}\nclusterpanel: the drain failed\n", "", 0, 1
    )
    outcome = step.read(StepContext("cp-1", (out,), {}))
    assert outcome.status == "succeeded" and outcome.data["drain_failed"] is True


def test_a_stacked_control_plane_node_leaves_etcd_before_kubeadm_reset() -> None:
    removal = remove_node.Removal(CP[0], CP[1], tuple(CP), tuple(CP))
    plan = remove_node.plan(STACKED, removal, {}, CLIENT, "/var/tmp/clusterpanel-rm-1")
    assert [p.name for p in plan.phases] == ["drain", "etcd member", "reset", "delete", "clean-up"]
    member = plan.phases[1].steps[0]
    assert member.node == "cp-2"  # a member that stays, never the one leaving
    files = [a for a in member.actions if isinstance(a, FileWrite)]
    assert {f.path: f.mode for f in files} == {
        "/var/tmp/clusterpanel-rm-1/ca.crt": 0o600,
        "/var/tmp/clusterpanel-rm-1/client.crt": 0o600,
        "/var/tmp/clusterpanel-rm-1/client.key": 0o600,
    }
    assert [f.secret for f in files] == [False, False, True]
    script = member.actions[-1].line  # type: ignore[union-attr]
    assert "--endpoints=https://10.0.0.12:2379,https://10.0.0.13:2379" in script
    assert "member list -w json" in script and "member remove" in script
    assert plan.phases[0].steps[0].node == "cp-2"  # kubectl runs on another control-plane node


def test_the_member_script_finds_the_hex_id_by_name(tmp_path: object) -> None:
    """Run against a recording etcdctl stand-in: the decimal ID of ``member list -w json`` is
    given to ``member remove`` in hex; a name not listed is already removed."""
    import pathlib

    base = pathlib.Path(str(tmp_path))
    listing = (
        '{"header":{"cluster_id":1},"members":[{"ID":10501334649042878790,"name":"cp-10",'
        '"peerURLs":["https://10.0.0.20:2380"]},{"ID":1234,"name":"cp-1","peerURLs":[]}]}'
    )
    fake = base / "etcdctl"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {base}/calls\ncase "$*" in *list*) echo \'{listing}\' ;; esac\n'
    )
    fake.chmod(0o755)
    client = remove_node.etcd.ClientCert()
    for name, hex_id in (("cp-10", "91bc3c398fb3c146"), ("cp-1", "4d2"), ("cp-9", None)):
        (base / "calls").unlink(missing_ok=True)
        script = remove_node.member_remove_script(name, ["https://10.0.0.12:2379"], client)
        done = subprocess.run(
            ["sh", "-c", script],
            env={"PATH": f"{base}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        calls = (base / "calls").read_text().splitlines()
        if hex_id is None:
            assert len(calls) == 1 and "already removed" in done.stdout
        else:
            assert calls[-1].endswith(f"member remove {hex_id}"), calls


def test_an_external_etcd_node_is_removed_from_etcd_then_stopped() -> None:
    removal = remove_node.Removal(ETCD[2], None, (CP[0],), tuple(ETCD))
    plan = remove_node.plan(EXTERNAL, removal, {}, CLIENT, "/var/tmp/w")
    assert [(p.name, p.steps[0].node) for p in plan.phases] == [
        ("etcd member", "etcd-1"),
        ("stop etcd", "etcd-3"),
    ]
    assert "systemctl disable --now etcd" in _lines(plan)[-1][2]
