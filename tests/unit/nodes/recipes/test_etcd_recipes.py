"""The etcd recipes as plain data: units, command lines, plans and how answers are read."""

from __future__ import annotations

import json
import shlex

import pytest

from clusterpanel.errors import InputError
from nodes.recipes import etcd_backup, external_etcd
from nodes.recipes.plan import ClusterSpec, CommandOutput, FileWrite, NodeTarget, StepContext

CLUSTER = ClusterSpec("prod", "v1.31.0", "10.244.0.0/16", "10.96.0.0/12", "containerd",
                      etcd_topology="external")  # fmt: skip
MEMBERS = [
    NodeTarget("etcd-2", "10.0.0.32", "etcd"),
    NodeTarget("etcd-1", "10.0.0.31", "etcd"),
    NodeTarget("etcd-3", "fd00::33", "etcd"),
    NodeTarget("cp-1", "10.0.0.11", "control-plane"),
]


def _files() -> dict[str, dict[str, external_etcd.MemberFile]]:
    return {
        m.name: {
            p: external_etcd.MemberFile(
                f"{m.name}:{p}".encode(), 0o600 if p.endswith(".key") else 0o644
            )
            for p in external_etcd.MEMBER_FILES
        }
        for m in MEMBERS
    }  # fmt: skip


def _output(stdout: str, exit_code: int = 0, stderr: str = "") -> CommandOutput:
    return CommandOutput(exit_code, stdout, stderr, 0.0, 1.0)


def test_the_unit_runs_etcd_with_tls_both_ways_and_the_inventorys_initial_cluster() -> None:
    members = external_etcd.members_of(MEMBERS)
    assert [m.name for m in members] == ["etcd-1", "etcd-2", "etcd-3"]
    unit = external_etcd.render_unit(CLUSTER, members[0], members)
    exec_start = unit.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0]
    words = exec_start.replace("\\\n", " ").split()
    assert words[0] == "/usr/bin/etcd"
    flags = dict(w.split("=", 1) if "=" in w else (w, "") for w in words[1:])
    assert flags["--name"] == "etcd-1"
    assert flags["--data-dir"] == "/var/lib/etcd"
    assert flags["--initial-cluster"] == (
        "etcd-1=https://10.0.0.31:2380,etcd-2=https://10.0.0.32:2380,etcd-3=https://[fd00::33]:2380"
    )
    assert flags["--initial-cluster-state"] == "new"
    assert flags["--listen-client-urls"] == "https://10.0.0.31:2379,https://127.0.0.1:2379"
    assert flags["--advertise-client-urls"] == "https://10.0.0.31:2379"
    assert flags["--listen-peer-urls"] == flags["--initial-advertise-peer-urls"]
    assert flags["--listen-peer-urls"] == "https://10.0.0.31:2380"
    for flag in ("--client-cert-auth", "--peer-client-cert-auth"):
        assert flag in flags
    pki = "/etc/kubernetes/pki/etcd"
    assert flags["--trusted-ca-file"] == flags["--peer-trusted-ca-file"] == f"{pki}/ca.crt"
    assert (
        flags["--cert-file"] == f"{pki}/server.crt" and flags["--key-file"] == f"{pki}/server.key"
    )
    assert flags["--peer-cert-file"] == f"{pki}/peer.crt"
    assert "Type=notify" in unit and "WantedBy=multi-user.target" in unit


def test_an_ipv6_member_is_bracketed_and_a_loopback_member_listens_on_its_address_alone() -> None:
    v6 = NodeTarget("etcd-3", "fd00::33", "etcd")
    assert external_etcd.listen_client_urls(v6) == [
        "https://[fd00::33]:2379",
        "https://127.0.0.1:2379",
    ]
    test_host = NodeTarget("h", "127.0.80.5", "etcd")
    assert external_etcd.listen_client_urls(test_host) == ["https://127.0.80.5:2379"]


def test_the_plan_writes_each_members_own_files_then_its_unit_then_waits_on_the_first() -> None:
    plan = external_etcd.plan(CLUSTER, MEMBERS, {}, _files())
    assert [p.name for p in plan.phases] == ["members", "health"]
    steps = plan.phases[0].steps
    assert [(s.name, s.node) for s in steps] == [
        ("certificates", "etcd-1"), ("etcd.service", "etcd-1"),
        ("certificates", "etcd-2"), ("etcd.service", "etcd-2"),
        ("certificates", "etcd-3"), ("etcd.service", "etcd-3"),
    ]  # fmt: skip
    writes = [a for a in steps[2].actions if isinstance(a, FileWrite)]
    assert [w.path for w in writes] == [f"/etc/kubernetes/{p}" for p in external_etcd.MEMBER_FILES]
    assert all(w.content.startswith(b"etcd-2:") for w in writes)
    key = next(w for w in writes if w.path.endswith("server.key"))
    assert key.mode == 0o600 and key.secret
    preview = plan.preview()
    assert "etcd-2:pki/etcd/server.key" not in json.dumps(preview)
    [install] = steps[1].actions
    assert install.stdin is not None and b"--name=etcd-1" in install.stdin  # type: ignore[union-attr]
    script = install.line  # type: ignore[union-attr]
    assert "systemctl enable --now --no-block etcd" in script
    assert "systemctl daemon-reload" in script and 'cmp -s "$tmp"' in script
    [health] = plan.phases[1].steps
    assert health.node == "etcd-1"
    line = health.actions[0].line  # type: ignore[union-attr]
    assert "endpoint health --cluster -w json" in line
    assert "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt" in line
    assert (
        "--endpoints='https://10.0.0.31:2379,https://10.0.0.32:2379,https://[fd00::33]:2379'"
        in line
    )


@pytest.mark.parametrize(
    ("cluster", "files", "params", "field"),
    [
        (ClusterSpec("s", "v1.31.0", "a", "b", "containerd"), True, {}, "cluster"),
        (CLUSTER, False, {}, "nodes"),
        (CLUSTER, True, {"binary": "etcd"}, "binary"),
        (CLUSTER, True, {"binary": "/usr/bin/etcd; rm -rf /"}, "binary"),
        (CLUSTER, True, {"other": 1}, "other"),
    ],
)
def test_refusals_name_their_field(
    cluster: ClusterSpec, files: bool, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InputError) as refused:
        external_etcd.plan(cluster, MEMBERS, params, _files() if files else {})
    assert refused.value.field == field


def test_the_health_answer_needs_every_member_healthy() -> None:
    read = external_etcd.read_health(3)
    entries = [
        {"endpoint": f"https://10.0.0.3{i}:2379", "health": True, "took": "1ms"} for i in (1, 2, 3)
    ]
    context = StepContext("etcd-1", (_output(json.dumps(entries)),), {})
    assert read(context).status == "succeeded"
    entries[1] = {"endpoint": "https://10.0.0.32:2379", "health": False, "error": "timeout"}
    context = StepContext("etcd-1", (_output(json.dumps(entries), 1),), {})
    outcome = read(context)
    assert outcome.status == "failed" and "10.0.0.32" in outcome.message
    two = StepContext("etcd-1", (_output(json.dumps([entries[0], entries[2]])),), {})
    assert read(two).message == "only 2 of 3 members healthy"
    nothing = StepContext("etcd-1", (_output("Error: context deadline exceeded", 1),), {})
    assert "deadline exceeded" in read(nothing).message


def _client() -> etcd_backup.PanelClient:
    return etcd_backup.PanelClient(b"CA", b"CERT", b"-----BEGIN PRIVATE KEY-----secret")


def test_the_backup_step_writes_the_client_key_privately_and_tries_its_own_member_first() -> None:
    plan = etcd_backup.backup_plan(CLUSTER, MEMBERS, _client(), "/var/tmp/cp-backup-7")
    [phase] = plan.phases
    [step] = phase.steps
    assert step.node == "etcd-1"
    files = [a for a in step.actions if isinstance(a, FileWrite)]
    assert {f.path: f.mode for f in files} == {
        "/var/tmp/cp-backup-7/ca.crt": 0o600,
        "/var/tmp/cp-backup-7/client.crt": 0o600,
        "/var/tmp/cp-backup-7/client.key": 0o600,
    }
    assert "secret" not in json.dumps(plan.preview())
    script = step.actions[-1].line  # type: ignore[union-attr]
    assert (
        "for ep in https://10.0.0.31:2379 https://10.0.0.32:2379 'https://[fd00::33]:2379'"
        in script
    )
    assert "snapshot save /var/tmp/cp-backup-7/snapshot.db" in script
    assert '--endpoints="$ep"' in script
    assert "trap 'rm -f /var/tmp/cp-backup-7/client.crt /var/tmp/cp-backup-7/client.key" in script
    assert "snapshot status /var/tmp/cp-backup-7/snapshot.db -w json" in script


def test_the_backup_answer_is_read_from_snapshot_status() -> None:
    read = etcd_backup.read_snapshot("/var/tmp/w")
    status = {"hash": 123, "revision": 42, "totalKey": 9, "totalSize": 20480}
    stdout = (
        f"Snapshot saved at /var/tmp/w/snapshot.db\n{etcd_backup.ENDPOINT_MARKER}https://e:2379\n"
        f"{etcd_backup.STATUS_MARKER}{json.dumps(status)}\nsize: 20480\n"
    )
    outcome = read(StepContext("etcd-1", (_output(stdout),), {}))
    assert outcome.status == "succeeded"
    assert outcome.data == {
        "path": "/var/tmp/w/snapshot.db", "work_dir": "/var/tmp/w", "endpoint": "https://e:2379",
        "size": 20480, "revision": 42, "total_keys": 9, "hash": 123,
    }  # fmt: skip
    failed = read(StepContext("etcd-1", (_output("", 1, "no member answered"),), {}))
    assert failed.status == "failed" and "no member answered" in failed.message


def test_the_restore_stops_all_restores_each_member_as_itself_then_starts_all() -> None:
    plan = etcd_backup.restore_plan(CLUSTER, MEMBERS, b"SNAP", "snapshot #4", "job9")
    assert [p.name for p in plan.phases] == ["stop", "restore", "start", "health"]
    assert [a.line for s in plan.phases[0].steps for a in s.actions] == ["systemctl stop etcd"] * 3  # type: ignore[union-attr]
    [command] = plan.phases[1].steps[2].actions
    assert command.stdin == b"SNAP" and command.stdin_label == "snapshot #4"  # type: ignore[union-attr]
    words = shlex.split(command.line.split("\n")[6])  # type: ignore[union-attr]
    assert words[:5] == [
        "ETCDCTL_API=3",
        "etcdctl",
        "snapshot",
        "restore",
        "/var/lib/etcd/.clusterpanel-restore.db",
    ]
    assert "--name=etcd-3" in words
    assert "--initial-advertise-peer-urls=https://[fd00::33]:2380" in words
    assert "--initial-cluster-token=clusterpanel-prod" in words
    assert "--data-dir=/var/lib/etcd/.clusterpanel-restore" in words
    assert "mv /var/lib/etcd/member /var/lib/etcd/member.before-restore-job9" in command.line  # type: ignore[union-attr]
    starts = [a.line for s in plan.phases[2].steps for a in s.actions]  # type: ignore[union-attr]
    assert starts == ["systemctl start --no-block etcd"] * 3
    assert plan.preview()["phases"][1]["steps"][0]["commands"][0]["stdin"] == "snapshot #4"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"confirm": "prod"}, "snapshot"),
        ({"snapshot": True, "confirm": "prod"}, "snapshot"),
        ({"snapshot": 0, "confirm": "prod"}, "snapshot"),
        ({"snapshot": 1}, "confirm"),
        ({"snapshot": 1, "confirm": " "}, "confirm"),
        ({"snapshot": 1, "confirm": "prod", "x": 1}, "x"),
    ],
)
def test_restore_params(params: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as refused:
        etcd_backup.validate_restore_params(params)
    assert refused.value.field == field


def test_a_stacked_cluster_has_no_systemd_members_to_restore() -> None:
    stacked = ClusterSpec("s", "v1.31.0", "a", "b", "containerd")
    with pytest.raises(InputError) as refused:
        etcd_backup.restore_plan(stacked, MEMBERS, b"", "x", "job1")
    assert refused.value.field == "cluster"
    # A backup works for stacked etcd too: its members are the control-plane nodes.
    plan = etcd_backup.backup_plan(stacked, MEMBERS, _client(), "/var/tmp/w")
    assert plan.phases[0].steps[0].node == "cp-1"
