"""What the jobs of binary-installed clusters share: their inputs and their building blocks.

A binary-installed cluster runs the components as systemd services from ``<prefix>/bin`` with
cfssl-style certificates in one directory (the layout decided by ``pki.domain.binary_layout``).
The recipes get everything as plain data — the layout's directories, the start order, each
node's services and files — so that they stay pure: the glue (``nodes.binary_jobs``) copies it
from the layout and the PKI.

The building blocks here are steps: write files (backing up what they replace), write units,
enable/start/restart services in dependency order, each waited for (``systemctl is-active``
polled) and probed where a probe exists without a network tool of the panel's own (etcd:
``etcdctl endpoint health`` with the health-check client certificate; the API server:
``kubectl get --raw /livez`` with the admin kubeconfig against the node's own address).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.plan import (
    Command,
    FileWrite,
    NodeTarget,
    Outcome,
    Step,
    StepContext,
    default_read,
)

SAY = "clusterpanel:"
ETCD = "etcd"
KUBE_APISERVER = "kube-apiserver"
DEFAULT_WAIT = 120  # seconds a unit may take to become active and healthy
POLL = 2  # seconds between two polls
MAX_WAIT = 3600
CNI_BIN = "/opt/cni/bin"
_SAFE = re.compile(r"[A-Za-z0-9._/@:+=-]+")
_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


@dataclass(frozen=True)
class Layout:
    """The directories of the install (a plain copy of ``BinaryLayout``)."""

    install_prefix: str = "/opt/kubernetes"
    cert_dir: str = "/etc/k8s/ssl"
    config_dir: str = "/etc/k8s"
    service_user: str = "kube"
    etcd_data_dir: str = "/var/lib/etcd"
    unit_dir: str = "/etc/systemd/system"
    cni_bin_dir: str = CNI_BIN
    # Where kube-apiserver writes its audit log (it runs as the service user); "" for none.
    audit_log_dir: str = ""

    def binary(self, name: str) -> str:
        return posixpath.join(self.install_prefix, "bin", name)

    @property
    def staging(self) -> str:
        """Where the release tarballs are uploaded and unpacked (on the node's own disk)."""
        return posixpath.join(self.install_prefix, "staging")

    @property
    def backup_root(self) -> str:
        return posixpath.join(self.config_dir, "backup")

    def unit(self, service: str) -> str:
        return posixpath.join(self.unit_dir, f"{service}.service")

    def is_unit(self, path: str) -> bool:
        return posixpath.dirname(path) == self.unit_dir.rstrip("/")


@dataclass(frozen=True)
class NodeFile:
    """One file the panel writes on a node: an absolute path, its content and mode; ``secret``
    files (keys, kubeconfigs with an embedded key) never show their content."""

    path: str
    content: bytes = field(repr=False)
    mode: int
    secret: bool = False
    owner: str = "root"  # the user whose service reads it, when that service is not root's


@dataclass(frozen=True)
class Probes:
    """The files the health probes use on a node (paths in the layout)."""

    etcd_ca: str
    etcd_cert: str
    etcd_key: str
    admin_kubeconfig: str
    etcd_client_port: int = 2379
    apiserver_port: int = 6443


@dataclass(frozen=True)
class BinaryNode:
    """One node of the job: its services in start order and the files the panel holds for it."""

    target: NodeTarget
    services: tuple[str, ...]
    files: tuple[NodeFile, ...] = ()

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True)
class BinaryCluster:
    """What every binary recipe gets: the layout, the start order (groups of services that start
    together, in dependency order), the job's nodes, the etcd members' addresses (for the
    quorum checks) and the probes' files; ``ca_keys`` are the files only control-plane nodes
    may receive."""

    layout: Layout
    start_order: tuple[tuple[str, ...], ...]
    nodes: tuple[BinaryNode, ...]
    etcd_members: tuple[str, ...]
    probes: Probes
    ca_keys: frozenset[str] = frozenset()

    def node(self, name: str) -> BinaryNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


# Parameters


def whole_number(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if value == "" or value is None:
        value = default
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"must be a whole number from {low} to {high}", name)
    return value


def refuse_unknown(kind: str, params: Mapping[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(params) - set(known))
    if not unknown:
        return
    takes = ", ".join(known) if known else "no parameters"
    raise InputError(f"unknown parameter {unknown[0]!r}; {kind} takes {takes}", unknown[0])


def validate_wait(
    kind: str, params: Mapping[str, Any], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """``wait_seconds``: how long each unit may take to become active and healthy."""
    refuse_unknown(kind, params, ("wait_seconds", *extra))
    return {"wait_seconds": whole_number(params, "wait_seconds", DEFAULT_WAIT, 5, MAX_WAIT)}


# Checks on the inputs (a bug upstream must not reach a node)


def check_inputs(cluster: BinaryCluster) -> None:
    for node in cluster.nodes:
        for service in node.services:
            if not _UNIT.fullmatch(service):
                raise ValueError(f"{service!r} is not a unit name")
        for file in node.files:
            if not file.path.startswith("/") or ".." in file.path.split("/"):
                raise ValueError(f"the files of {node.name} hold a bad path {file.path!r}")
            if not _SAFE.fullmatch(file.path):
                raise ValueError(f"the files of {node.name} hold a bad path {file.path!r}")
        if node.target.role != "control-plane":
            leaked = sorted(cluster.ca_keys & {f.path for f in node.files})
            if leaked:
                raise ValueError(
                    f"the files of the {node.target.role} {node.name} hold {', '.join(leaked)}: "
                    "CA keys go to control-plane nodes only"
                )


def digest(files: Iterable[NodeFile]) -> str:
    """A short id of a set of files: a step writing other files gets another name (so that a
    retry after a renewal writes them again)."""
    hashed = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.path):
        hashed.update(f"{file.path}\0{file.mode:o}\0".encode())
        hashed.update(hashlib.sha256(file.content).digest())
    return hashed.hexdigest()[:12]


def group_services(node: BinaryNode, group: Sequence[str]) -> tuple[str, ...]:
    return tuple(service for service in group if service in node.services)


# Steps


def _q(text: str) -> str:
    return shlex.quote(text)


def backup_command(writes: Sequence[FileWrite], backup_root: str) -> Command:
    """Copy every file that exists with other content than the new one to
    ``<backup_root>/<UTC timestamp>/<its absolute path>`` (0700), as distribute-pki does for
    ``/etc/kubernetes``; files that already are the new ones are neither backed up nor written."""
    calls = "\n".join(f"backup {_q(w.path)} {w.sha256}" for w in writes)
    script = f"""set -e
umask 077
b={_q(backup_root)}/$(date -u +%Y%m%dT%H%M%SZ)
n=0
backup() {{
  [ -f "$1" ] || return 0
  [ "$(sha256sum < "$1" | cut -c1-64)" = "$2" ] && return 0
  mkdir -p "$b$(dirname "$1")"
  cp -p "$1" "$b$1"
  n=$((n + 1))
  echo "backed up $1"
}}
{calls}
if [ "$n" -gt 0 ]; then echo "{SAY} $n replaced files backed up to $b"
else echo "{SAY} no file to replace"; fi
"""
    return Command(script, timeout=120.0)


def file_writes(layout: Layout, files: Sequence[NodeFile]) -> list[FileWrite]:
    """The files as root's (or the owner's a file names), readable by the service user's group
    where they are the services' (certificates, keys and configs); units stay root's own."""
    return [
        FileWrite(
            file.path,
            file.content,
            mode=file.mode,
            owner="root" if layout.is_unit(file.path) else file.owner,
            group="root" if layout.is_unit(file.path) else layout.service_user,
            secret=file.secret,
            skip_if_identical=True,
        )
        for file in sorted(files, key=lambda f: f.path)
    ]


def read_said(context: StepContext) -> Outcome:
    """Like ``default_read``, with the ``clusterpanel:`` lines of the output as the message."""
    outcome = default_read(context)
    said = [
        line.removeprefix(SAY).strip()
        for output in context.outputs
        for line in output.stdout.splitlines()
        if line.startswith(SAY)
    ]
    if outcome.status == "failed":
        last = said[-1] if said else ""
        return Outcome("failed", f"{outcome.message}: {last}" if last else outcome.message)
    return Outcome("succeeded", "; ".join(said))


def write_files_step(
    name: str, layout: Layout, node: BinaryNode, files: Sequence[NodeFile]
) -> Step:
    """The files written, after the backup of those they replace; the service user is created
    first when missing (its group owns the files), so that this runs before an install too."""
    writes = file_writes(layout, files)
    backup = backup_command(writes, layout.backup_root)
    return Step(name, node.name, (service_user_command(layout), backup, *writes), read_said)


def service_user_command(layout: Layout) -> Command:
    user = _q(layout.service_user)
    return Command(
        f"id -u {user} >/dev/null 2>&1 || "
        f"useradd --system --no-create-home --shell /usr/sbin/nologin {user}",
        timeout=60.0,
    )


def _poll(test: str, what: str, wait: int) -> str:
    """A shell loop: ``test`` until it succeeds, at most ``wait`` seconds, else fail naming
    ``what``."""
    tries = max(1, wait // POLL)
    return (
        f"i=0; until {test}; do i=$((i + 1)); if [ $i -ge {tries} ]; then "
        f"echo {_q(f'{SAY} {what} within {wait}s')}; exit 1; fi; sleep {POLL}; done"
    )


def probe(cluster: BinaryCluster, node: BinaryNode, service: str) -> str | None:
    """The health probe of ``service`` on ``node``, where one exists (etcd, the API server)."""
    layout, probes = cluster.layout, cluster.probes
    address = node.target.address
    host = f"[{address}]" if ":" in address else address
    if service == ETCD:
        return (
            f"{_q(layout.binary('etcdctl'))} "
            f"--endpoints={_q(f'https://{host}:{probes.etcd_client_port}')} "
            f"--cacert={_q(probes.etcd_ca)} --cert={_q(probes.etcd_cert)} "
            f"--key={_q(probes.etcd_key)} --command-timeout=5s endpoint health"
        )
    if service == KUBE_APISERVER:
        return (
            f"{_q(layout.binary('kubectl'))} --kubeconfig={_q(probes.admin_kubeconfig)} "
            f"--server={_q(f'https://{host}:{probes.apiserver_port}')} "
            "--request-timeout=5s get --raw /livez"
        )
    return None


def quorum_check(cluster: BinaryCluster) -> str:
    """Every etcd member healthy (before one of them is restarted: the others keep quorum)."""
    probes, layout = cluster.probes, cluster.layout
    endpoints = ",".join(
        f"https://{f'[{a}]' if ':' in a else a}:{probes.etcd_client_port}"
        for a in cluster.etcd_members
    )
    return (
        f"{_q(layout.binary('etcdctl'))} --endpoints={_q(endpoints)} "
        f"--cacert={_q(probes.etcd_ca)} --cert={_q(probes.etcd_cert)} "
        f"--key={_q(probes.etcd_key)} --command-timeout=5s endpoint health"
    )


def wait_commands(
    cluster: BinaryCluster, node: BinaryNode, service: str, wait: int
) -> list[Command]:
    """``systemctl is-active`` polled until the unit runs, then its health probe polled."""
    unit = _q(service)
    commands = [
        Command(
            _poll(f"systemctl is-active --quiet {unit}", f"{service} did not become active", wait)
            + f"; echo {_q(f'{SAY} {service} active')}",
            timeout=wait + 60.0,
        )
    ]
    check = probe(cluster, node, service)
    if check is not None:
        commands.append(
            Command(
                _poll(f"{check} >/dev/null 2>&1", f"{service} was not healthy", wait)
                + f"; echo {_q(f'{SAY} {service} healthy')}",
                timeout=wait + 60.0,
            )
        )
    return commands


def start_commands(
    cluster: BinaryCluster, node: BinaryNode, services: Sequence[str], wait: int
) -> list[Command]:
    """``systemctl enable --now`` for each service, each waited for. etcd is started without
    waiting for systemd's answer (``--no-block``): a member is ready only once its peers run,
    which the poll waits for."""
    commands: list[Command] = []
    for service in services:
        flags = "--now --no-block" if service == ETCD else "--now"
        commands.append(Command(f"systemctl enable {flags} {_q(service)}", timeout=wait + 60.0))
        commands.extend(wait_commands(cluster, node, service, wait))
    return commands


def restart_commands(
    cluster: BinaryCluster, node: BinaryNode, services: Sequence[str], wait: int
) -> list[Command]:
    """``systemctl restart`` for each service in order, each waited for before the next."""
    commands: list[Command] = []
    for service in services:
        if service == ETCD and len(cluster.etcd_members) > 1:
            # Restart a member only while all of them are healthy: the others keep quorum.
            commands.append(
                Command(
                    _poll(f"{quorum_check(cluster)} >/dev/null 2>&1", "etcd lost a member", wait),
                    timeout=wait + 60.0,
                )
            )
        commands.append(Command(f"systemctl restart {_q(service)}", timeout=wait + 60.0))
        commands.extend(wait_commands(cluster, node, service, wait))
    return commands


def units_step(name: str, cluster: BinaryCluster, node: BinaryNode) -> Step:
    """The node's unit files written, then ``systemctl daemon-reload``."""
    units = [f for f in node.files if cluster.layout.is_unit(f.path)]
    writes = file_writes(cluster.layout, units)
    reload = Command("systemctl daemon-reload", timeout=120.0)
    return Step(name, node.name, (*writes, reload), read_said)


def node_order(cluster: BinaryCluster) -> list[BinaryNode]:
    """Control-plane nodes first, then workers, then etcd-only nodes; by name within a role."""
    rank = {"control-plane": 0, "worker": 1, "etcd": 2}
    return sorted(cluster.nodes, key=lambda n: (rank.get(n.target.role, 3), n.name))


def etcd_nodes(cluster: BinaryCluster) -> list[BinaryNode]:
    return sorted((n for n in cluster.nodes if ETCD in n.services), key=lambda n: n.name)
