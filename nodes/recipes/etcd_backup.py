"""etcd backups and restores (pure, no Django; the glue is ``nodes.etcd_jobs``).

Backup: one step on a member. The panel's etcd client certificate goes to a private work
directory (0700, files 0600); the script tries the members' client URLs in order (its own
first), takes ``etcdctl snapshot save`` from the first that answers a health check, checks the
file with ``etcdctl snapshot status`` and removes the client certificate, whatever happened. The
snapshot stays in the work directory until the glue has copied it back and removed it.

Restore, on every member: stop etcd (all first, so no member serves old data next to restored
ones), restore the snapshot into a staging directory inside the data directory, move the current
``member`` directory aside (``member.before-restore-<stamp>``) and the restored one in, start
etcd on all, then wait until every member is healthy. The data directory itself is often a mount
point (a disk of its own): it is never moved, only its ``member`` directory, within it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import external_etcd as etcd
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
    default_read,
)

BACKUP_KIND = "etcd-backup"
RESTORE_KIND = "etcd-restore"
MUTATING_BACKUP = False  # reads the cluster; changes nothing on the members
MUTATING_RESTORE = True
SNAPSHOT_FILE = "snapshot.db"
STATUS_MARKER = "clusterpanel-snapshot-status:"
ENDPOINT_MARKER = "clusterpanel-snapshot-endpoint:"
_WORK_DIR = re.compile(r"^/[A-Za-z0-9/._-]+$")


@dataclass(frozen=True)
class PanelClient:
    """The panel's etcd client certificate (PEM) and the etcd CA that signed the members'."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        return "PanelClient(<etcd client certificate>)"


def members_of(cluster: ClusterSpec, nodes: Sequence[NodeTarget]) -> list[NodeTarget]:
    """etcd's members: the etcd nodes (external) or the control-plane nodes (stacked)."""
    role = "etcd" if cluster.etcd_topology == "external" else "control-plane"
    return sorted((n for n in nodes if n.role == role), key=lambda n: n.name)


# Backup


def validate_backup_params(params: Mapping[str, Any]) -> dict[str, Any]:
    if params:
        name = sorted(params)[0]
        raise InputError(f"unknown parameter {name!r}; etcd-backup takes none", name)
    return {}


def snapshot_script(work_dir: str, members: Sequence[NodeTarget], first: NodeTarget) -> str:
    q = shlex.quote
    client = etcd.ClientCert(
        ca=f"{work_dir}/ca.crt", cert=f"{work_dir}/client.crt", key=f"{work_dir}/client.key"
    )
    ordered = [first, *(m for m in members if m.name != first.name)]
    urls = " ".join(q(etcd.client_url(m.address)) for m in ordered)
    snapshot = f"{work_dir}/{SNAPSHOT_FILE}"
    each = '"$ep"'  # the loop's variable, expanded by the shell
    health = etcd.etcdctl(
        [], client, "endpoint", "health", timeout=etcd.PROBE_TIMEOUT, endpoints_shell=each
    )
    save = etcd.etcdctl([], client, "snapshot", "save", snapshot, timeout=300, endpoints_shell=each)
    return (
        "set -u\n"
        f"trap 'rm -f {q(client.cert)} {q(client.key)} {q(client.ca)}' EXIT\n"
        "taken=''\n"
        f"for ep in {urls}; do\n"
        f"  if {health} >/dev/null 2>&1; then\n"
        f"    if {save}; then taken=$ep; break; fi\n"
        "  fi\n"
        "done\n"
        '[ -n "$taken" ] || { echo "no member answered and gave a snapshot" >&2; exit 1; }\n'
        f"chmod 0600 {q(snapshot)}\n"
        f'echo "{ENDPOINT_MARKER}$taken"\n'
        f"status=$(ETCDCTL_API=3 etcdctl snapshot status {q(snapshot)} -w json) || exit 1\n"
        f'echo "{STATUS_MARKER}$status"\n'
        f'echo "size: $(wc -c < {q(snapshot)})"\n'
    )


def read_snapshot(work_dir: str) -> Any:
    def read(context: StepContext) -> Outcome:
        outcome = default_read(context)
        output = context.outputs[-1] if context.outputs else None
        if output is None or outcome.status == "failed":
            why = (output.stderr.strip().splitlines() or [outcome.message])[-1] if output else ""
            return Outcome("failed", f"no snapshot taken: {why or outcome.message}")
        status: dict[str, Any] = {}
        endpoint = ""
        size = -1
        for line in output.stdout.splitlines():
            if line.startswith(STATUS_MARKER):
                status = json.loads(line[len(STATUS_MARKER) :])
            elif line.startswith(ENDPOINT_MARKER):
                endpoint = line[len(ENDPOINT_MARKER) :].strip()
            elif line.startswith("size: "):
                size = int(line[6:].strip())
        if not status or size <= 0:
            return Outcome("failed", "etcdctl snapshot status gave no answer for the snapshot")
        data = {
            "path": f"{work_dir}/{SNAPSHOT_FILE}",
            "work_dir": work_dir,
            "endpoint": endpoint,
            "size": size,
            "revision": int(status.get("revision", 0)),
            "total_keys": int(status.get("totalKey", 0)),
            "hash": int(status.get("hash", 0)),
        }
        return Outcome(
            "succeeded",
            f"snapshot of {endpoint}: revision {data['revision']}, {data['total_keys']} keys, "
            f"{size} bytes",
            data,
        )

    return read


def backup_plan(
    cluster: ClusterSpec, nodes: Sequence[NodeTarget], client: PanelClient, work_dir: str
) -> Plan:
    members = members_of(cluster, nodes)
    if not members:
        raise InputError(f"cluster {cluster.name} has no etcd members", "nodes")
    if not _WORK_DIR.match(work_dir) or ".." in work_dir:
        raise ValueError(f"bad work directory {work_dir!r}")
    first = members[0]
    q = shlex.quote
    actions = (
        Command(f"rm -rf {q(work_dir)} && mkdir -m 0700 -p {q(work_dir)}", timeout=30),
        FileWrite(f"{work_dir}/ca.crt", client.ca_pem, mode=0o600),
        FileWrite(f"{work_dir}/client.crt", client.cert_pem, mode=0o600),
        FileWrite(f"{work_dir}/client.key", client.key_pem, mode=0o600, secret=True),
        Command(snapshot_script(work_dir, members, first), timeout=600),
    )
    step = Step("snapshot", first.name, actions, read=read_snapshot(work_dir))
    return Plan(BACKUP_KIND, (Phase("snapshot", (step,)),))


def cleanup_command(work_dir: str) -> str:
    return f"rm -rf {shlex.quote(work_dir)}"


# Restore


def validate_restore_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``snapshot``: the id of a stored snapshot; ``confirm``: the cluster's name, typed.
    The glue checks both against the cluster (it knows it; this function does not)."""
    unknown = sorted(set(params) - {"snapshot", "confirm"})
    if unknown:
        raise InputError(f"unknown parameter {unknown[0]!r}; known: snapshot, confirm", unknown[0])
    snapshot = params.get("snapshot")
    if isinstance(snapshot, bool) or not isinstance(snapshot, int) or snapshot < 1:
        raise InputError("must be the id of a stored snapshot (a whole number)", "snapshot")
    confirm = params.get("confirm")
    if not isinstance(confirm, str) or not confirm.strip():
        raise InputError("type the cluster's name to confirm the restore", "confirm")
    return {"snapshot": snapshot, "confirm": confirm}


def restore_script(
    cluster: ClusterSpec, member: NodeTarget, members: Sequence[NodeTarget], stamp: str
) -> str:
    q = shlex.quote
    data = etcd.DATA_DIR
    stage = f"{data}/.clusterpanel-restore"
    snapshot = f"{data}/.clusterpanel-restore.db"
    aside = f"{data}/member.before-restore-{stamp}"
    restore = " ".join(
        [
            "ETCDCTL_API=3 etcdctl snapshot restore",
            q(snapshot),
            f"--name={q(member.name)}",
            f"--initial-cluster={q(etcd.initial_cluster(members))}",
            f"--initial-cluster-token={q(etcd.cluster_token(cluster))}",
            f"--initial-advertise-peer-urls={q(etcd.peer_url(member.address))}",
            f"--data-dir={q(stage)}",
        ]
    )
    return (
        "set -e\n"
        "umask 077\n"
        f"mkdir -p {q(data)}\n"
        f"trap 'rm -f {q(snapshot)}' EXIT\n"
        f"rm -rf {q(stage)}\n"
        f"cat > {q(snapshot)}\n"
        f"{restore}\n"
        f"if [ -d {q(data + '/member')} ]; then rm -rf {q(aside)}; "
        f"mv {q(data + '/member')} {q(aside)}; fi\n"
        f"mv {q(stage + '/member')} {q(data + '/member')}\n"
        f"rmdir {q(stage)}\n"
        f"echo 'restored; the previous data is in {aside}'\n"
    )


def restore_plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    snapshot: bytes,
    snapshot_label: str,
    stamp: str,
) -> Plan:
    """``snapshot``: the snapshot's bytes (empty for a preview; ``snapshot_label`` names it)."""
    if cluster.etcd_topology != "external":
        raise InputError(
            f"cluster {cluster.name} runs etcd as static pods on its control-plane nodes; "
            "etcd-restore restores external etcd members (systemd) only",
            "cluster",
        )
    members = members_of(cluster, nodes)
    if not members:
        raise InputError(f"cluster {cluster.name} has no etcd members", "nodes")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", stamp):
        raise ValueError(f"bad stamp {stamp!r}")
    stops = tuple(
        Step("stop etcd", m.name, (Command("systemctl stop etcd", timeout=120),)) for m in members
    )
    restores = tuple(
        Step(
            "restore the data directory",
            m.name,
            (
                Command(
                    restore_script(cluster, m, members, stamp),
                    timeout=600,
                    stdin=snapshot,
                    stdin_label=snapshot_label,
                ),
            ),
        )
        for m in members
    )
    starts = tuple(
        Step("start etcd", m.name, (Command("systemctl start --no-block etcd", timeout=120),))
        for m in members
    )
    health = etcd.health_step("health", members[0], members, etcd.ClientCert())
    return Plan(
        RESTORE_KIND,
        (
            Phase("stop", stops),
            Phase("restore", restores),
            Phase("start", starts),
            Phase("health", (health,)),
        ),
    )
