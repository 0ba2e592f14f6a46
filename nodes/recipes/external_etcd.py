"""External etcd: the etcd nodes run etcd as a systemd service with the panel's certificates.

Pure (no Django): the glue in ``nodes.etcd_jobs`` hands in each member's certificate files (the
``pki/etcd/*`` part of its node bundle) and the inventory's members.

Per member, in one phase (parallel):

1. the certificates, written under ``/etc/kubernetes/pki/etcd`` (keys 0600);
2. the unit ``etcd.service``: peer and client TLS with client-certificate auth on both, the initial
   cluster from the inventory, data in ``/var/lib/etcd``. It is installed only when it differs
   from the one on the host; ``daemon-reload`` and a restart follow only then, so a re-run on an
   unchanged, running member restarts nothing. A member not running is enabled and started with
   ``--no-block``: under ``Type=notify`` a member reports ready only once the cluster has a
   quorum, so a blocking start would wait for members not started yet.

Then one step on the first member waits (bounded) until ``etcdctl endpoint health --cluster``
reports every member healthy, with the healthcheck-client certificate of step 1.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.plan import (
    Action,
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

KIND = "external-etcd"
MUTATING = True

PKI_DIR = "/etc/kubernetes/pki/etcd"
DATA_DIR = "/var/lib/etcd"
UNIT_PATH = "/etc/systemd/system/etcd.service"
CLIENT_PORT = 2379
PEER_PORT = 2380
DEFAULT_BINARY = "/usr/bin/etcd"
# The member files each etcd member gets from its bundle (relative to /etc/kubernetes).
MEMBER_FILES = (
    "pki/etcd/ca.crt",
    "pki/etcd/server.crt",
    "pki/etcd/server.key",
    "pki/etcd/peer.crt",
    "pki/etcd/peer.key",
    "pki/etcd/healthcheck-client.crt",
    "pki/etcd/healthcheck-client.key",
)
# How long the health step waits for every member: attempts times the pause, each probe bounded too.
HEALTH_ATTEMPTS = 30
HEALTH_PAUSE = 1.0
PROBE_TIMEOUT = 3


@dataclass(frozen=True)
class MemberFile:
    content: bytes
    mode: int


@dataclass(frozen=True)
class ClientCert:
    """Where a TLS client certificate for etcdctl is on the member (PEM files)."""

    ca: str = f"{PKI_DIR}/ca.crt"
    cert: str = f"{PKI_DIR}/healthcheck-client.crt"
    key: str = f"{PKI_DIR}/healthcheck-client.key"


# Parameters


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``binary``: the etcd executable on the members (default the Debian package's)."""
    unknown = sorted(set(params) - {"binary"})
    if unknown:
        raise InputError(f"unknown parameter {unknown[0]!r}; known: binary", unknown[0])
    binary = params.get("binary", DEFAULT_BINARY)
    if (
        not isinstance(binary, str)
        or not binary.startswith("/")
        or len(binary) > 255
        or any(c.isspace() or c in "\\'\"$`;&|<>()*?[]{}!#~\0" for c in binary)
    ):
        raise InputError("must be an absolute path without spaces or shell characters", "binary")
    return {"binary": binary}


# Addresses and URLs


def host_in_url(address: str) -> str:
    """The address as a URL host: IPv6 in brackets."""
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def client_url(address: str) -> str:
    return f"https://{host_in_url(address)}:{CLIENT_PORT}"


def peer_url(address: str) -> str:
    return f"https://{host_in_url(address)}:{PEER_PORT}"


def initial_cluster(members: Sequence[NodeTarget]) -> str:
    """``name=https://addr:2380,…`` in the members' order."""
    return ",".join(f"{m.name}={peer_url(m.address)}" for m in members)


def cluster_token(cluster: ClusterSpec) -> str:
    return f"clusterpanel-{cluster.name}"


def listen_client_urls(member: NodeTarget) -> list[str]:
    """The member's address and 127.0.0.1. A member whose own address is a loopback address
    (a test host, one of many on one machine) listens on it alone: 127.0.0.1:2379 is one port
    shared by every "host" there, and the member's address already serves local clients."""
    urls = [client_url(member.address)]
    if not ipaddress.ip_address(member.address).is_loopback:
        urls.append(client_url("127.0.0.1"))
    return urls


def etcd_flags(
    cluster: ClusterSpec, member: NodeTarget, members: Sequence[NodeTarget]
) -> list[str]:
    return [
        f"--name={member.name}",
        f"--data-dir={DATA_DIR}",
        f"--listen-client-urls={','.join(listen_client_urls(member))}",
        f"--advertise-client-urls={client_url(member.address)}",
        f"--listen-peer-urls={peer_url(member.address)}",
        f"--initial-advertise-peer-urls={peer_url(member.address)}",
        f"--initial-cluster={initial_cluster(members)}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={cluster_token(cluster)}",
        "--client-cert-auth",
        f"--trusted-ca-file={PKI_DIR}/ca.crt",
        f"--cert-file={PKI_DIR}/server.crt",
        f"--key-file={PKI_DIR}/server.key",
        "--peer-client-cert-auth",
        f"--peer-trusted-ca-file={PKI_DIR}/ca.crt",
        f"--peer-cert-file={PKI_DIR}/peer.crt",
        f"--peer-key-file={PKI_DIR}/peer.key",
        "--snapshot-count=10000",
    ]


def render_unit(
    cluster: ClusterSpec,
    member: NodeTarget,
    members: Sequence[NodeTarget],
    binary: str = DEFAULT_BINARY,
) -> str:
    """The member's ``etcd.service``; one flag per continuation line."""
    lines = [binary, *etcd_flags(cluster, member, members)]
    exec_start = " \\\n  ".join(lines)
    return (
        "# Written by clusterpanel; changes here are replaced at the next external-etcd job.\n"
        "[Unit]\n"
        f"Description=etcd member {member.name} of cluster {cluster.name}\n"
        "Documentation=https://etcd.io/docs/\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=notify\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "LimitNOFILE=65536\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


# Commands


def etcdctl(
    endpoints: Sequence[str],
    client: ClientCert,
    *args: str,
    timeout: int = 5,
    endpoints_shell: str | None = None,
) -> str:
    """An ``etcdctl`` line (API v3) with TLS client auth; ``args`` are quoted here.

    ``endpoints_shell`` replaces ``endpoints`` with a shell expression (such as ``"$ep"``),
    inserted as it is: the caller's own, never a value from outside."""
    q = shlex.quote
    where = endpoints_shell if endpoints_shell is not None else q(",".join(endpoints))
    return (
        f"ETCDCTL_API=3 etcdctl --endpoints={where} --cacert={q(client.ca)} "
        f"--cert={q(client.cert)} --key={q(client.key)} --command-timeout={timeout}s "
        f"--dial-timeout={min(timeout, 3)}s " + " ".join(q(a) for a in args)
    )


def install_unit_script() -> str:
    """Reads the unit on stdin; installs and (re)starts only on a change, starts when stopped.

    Prints one line saying what it did (``unit changed|unit unchanged``, ``etcd restarted|
    started|running``)."""
    q = shlex.quote
    unit, data = q(UNIT_PATH), q(DATA_DIR)
    return (
        "set -e\n"
        f"mkdir -p {data} && chmod 0700 {data}\n"
        f"tmp=$(mktemp {q(UNIT_PATH + '.XXXXXX')})\n"
        "trap 'rm -f \"$tmp\"' EXIT\n"
        'cat > "$tmp"\n'
        f'if cmp -s "$tmp" {unit}; then changed=0; else\n'
        f'  chmod 0644 "$tmp" && mv -f "$tmp" {unit}; changed=1\n'
        "  systemctl daemon-reload\n"
        "fi\n"
        "if systemctl is-active --quiet etcd; then\n"
        '  if [ "$changed" = 1 ]; then systemctl restart --no-block etcd; '
        "echo 'unit changed; etcd restarted'; else echo 'unit unchanged; etcd running'; fi\n"
        "else\n"
        "  systemctl enable --now --no-block etcd\n"
        '  if [ "$changed" = 1 ]; then echo "unit changed; etcd started"; '
        'else echo "unit unchanged; etcd started"; fi\n'
        "fi\n"
    )


def wait_healthy_script(endpoints: Sequence[str], client: ClientCert, attempts: int) -> str:
    """Probes ``endpoint health --cluster`` until every member answers healthy or ``attempts``
    probes failed; prints the last probe's JSON (the step's read judges it).

    An exit 0 alone is not enough: ``--cluster`` asks the member list, and a member that has not
    yet published its client URLs is missing from it, so etcdctl can succeed with fewer entries."""
    probe = etcdctl(
        endpoints, client, "endpoint", "health", "--cluster", "-w", "json", timeout=PROBE_TIMEOUT
    )
    healthy = "$(printf '%s' \"$out\" | grep -o '\"health\":true' | wc -l)"
    return (
        "i=0\n"
        f'until out=$({probe} 2>&1) && [ "{healthy}" -ge {len(endpoints)} ]; do\n'
        "  i=$((i + 1))\n"
        f'  if [ "$i" -ge {attempts} ]; then printf "%s\\n" "$out"; exit 1; fi\n'
        f"  sleep {HEALTH_PAUSE:g}\n"
        "done\n"
        'printf "%s\\n" "$out"\n'
    )


def health_step(
    phase: str, first: NodeTarget, members: Sequence[NodeTarget], client: ClientCert
) -> Step:
    endpoints = [client_url(m.address) for m in members]
    timeout = HEALTH_ATTEMPTS * (HEALTH_PAUSE + PROBE_TIMEOUT + 3) + 10
    line = wait_healthy_script(endpoints, client, HEALTH_ATTEMPTS)
    return Step(
        "wait until every member is healthy",
        first.name,
        (Command(line, timeout=timeout),),
        read=read_health(len(members)),
    )


def parse_health(stdout: str) -> list[dict[str, Any]]:
    """The entries of ``endpoint health -w json`` (a JSON list); [] when it printed none."""
    start = stdout.find("[")
    if start < 0:
        return []
    try:
        found = json.loads(stdout[start : stdout.rfind("]") + 1])
    except ValueError:
        return []
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def read_health(expected: int) -> Any:
    def read(context: StepContext) -> Outcome:
        output = context.outputs[-1] if context.outputs else None
        entries = parse_health(output.stdout) if output is not None else []
        healthy = sorted(str(e.get("endpoint")) for e in entries if e.get("health") is True)
        sick = sorted(
            f"{e.get('endpoint')} ({e.get('error') or 'unhealthy'})"
            for e in entries
            if e.get("health") is not True
        )
        data = {"healthy": healthy, "unhealthy": sick}
        if output is not None and output.exit_code == 0 and len(healthy) >= expected and not sick:
            return Outcome("succeeded", f"{len(healthy)} of {expected} members healthy", data)
        if sick:
            return Outcome("failed", f"members not healthy: {', '.join(sick)}", data)
        if entries:
            return Outcome("failed", f"only {len(healthy)} of {expected} members healthy", data)
        why = (output.stdout.strip().splitlines() or ["no answer"])[-1] if output else "not run"
        return Outcome("failed", f"etcd did not answer the health check: {why}", data)

    return read


def read_unit(context: StepContext) -> Outcome:
    outcome = default_read(context)
    said = context.outputs[-1].stdout.strip() if context.outputs else ""
    if outcome.status == "failed":
        detail = context.outputs[-1].stderr.strip() if context.outputs else ""
        tail = detail.splitlines()[-1] if detail else outcome.message
        return Outcome("failed", f"etcd.service: {tail}")
    return Outcome(
        "succeeded", said, {"restarted": "restarted" in said, "changed": "changed" in said}
    )


# The plan


def members_of(nodes: Sequence[NodeTarget]) -> list[NodeTarget]:
    """The etcd members among ``nodes`` (role etcd), in name order."""
    return sorted((n for n in nodes if n.role == "etcd"), key=lambda n: n.name)


def plan(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    params: Mapping[str, Any],
    files: Mapping[str, Mapping[str, MemberFile]],
) -> Plan:
    """``files``: per member name, its bundle files by path relative to ``/etc/kubernetes``
    (at least ``MEMBER_FILES``)."""
    if cluster.etcd_topology != "external":
        raise InputError(
            f"cluster {cluster.name} keeps etcd on its control-plane nodes (stacked); "
            "external-etcd needs the external etcd topology",
            "cluster",
        )
    members = members_of(nodes)
    if not members:
        raise InputError(f"cluster {cluster.name} has no nodes of role etcd", "nodes")
    binary = validate_params(params)["binary"]
    steps: list[Step] = []
    for member in members:
        bundle = files.get(member.name, {})
        missing = [p for p in MEMBER_FILES if p not in bundle]
        if missing:
            raise InputError(f"{member.name} has no {missing[0]} issued yet", "nodes")
        writes: list[Action] = [
            FileWrite(
                f"/etc/kubernetes/{path}",
                bundle[path].content,
                mode=bundle[path].mode,
                secret=path.endswith(".key"),
            )
            for path in MEMBER_FILES
        ]
        steps.append(Step("certificates", member.name, tuple(writes)))
        unit = render_unit(cluster, member, members, binary).encode()
        install = Command(
            install_unit_script(),
            timeout=60,
            stdin=unit,
            stdin_label=f"{UNIT_PATH} ({len(unit)} bytes)",
        )
        steps.append(Step("etcd.service", member.name, (install,), read=read_unit))
    return Plan(
        KIND,
        (
            Phase("members", tuple(steps)),
            Phase("health", (health_step("health", members[0], members, ClientCert()),)),
        ),
    )
