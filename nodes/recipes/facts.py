"""The ``facts`` job: what a node is, read without changing anything.

One phase ``facts`` with one step ``gather facts`` per node. The step runs one POSIX ``sh``
script as root that only reads: ``/etc/os-release``, ``/proc``, ``/sys`` and the ``--version``
answers of the Kubernetes tools that are installed. Where a tool is missing (minimal images have
no ``ip``, no ``lsmod``) the script falls back to ``/proc`` and ``/sys``; a value it cannot find
is ``None`` in the facts, never an error.

Output format (why it cannot be forged): every section is one line
``clusterpanel-facts 1 <name> <hex>`` where ``<hex>`` is the section's raw bytes as ``od``
prints them. Nothing a host controls (a hostname, a tool's version banner) ever reaches the
output unencoded, so a value holding a newline and a fake section line stays inside its own
value. The parser takes only known section names between the ``begin`` and ``end`` lines and
refuses an output that names a section twice.

Facts (``parse_facts``): ``hostname``, ``os_id``, ``os_version``, ``kernel``, ``architecture``,
``cpus``, ``memory_bytes``, ``swap_bytes`` (total size of ``/proc/swaps``), ``swaps`` (the
swap devices), ``mac_addresses`` ``{iface: mac}``, ``product_uuid``, ``ip_addresses`` (global
and site addresses, no loopback or link-local), ``cri_sockets`` (the kubeadm spellings of the
sockets present), ``cgroup_version`` (``v1``/``v2``), ``cgroup_driver``
``{"containerd", "cri-o", "kubelet": "systemd" | "cgroupfs" | None}`` and ``versions``
``{kubeadm, kubelet, kubectl, containerd, crictl}`` (``v1.31.2`` style, None when absent).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes.plan import (
    ClusterSpec,
    Command,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

KIND = "facts"
MUTATING = False
PHASE = "facts"
STEP = "gather facts"

MARK = "clusterpanel-facts 1"
# The sockets kubeadm looks for (cmd/kubeadm/app/util/runtime: defaultKnownCRISockets), with
# the /run spelling many distributions use; both spellings name one runtime.
CRI_SOCKETS: dict[str, str] = {
    "containerd": "unix:///var/run/containerd/containerd.sock",
    "cri-o": "unix:///var/run/crio/crio.sock",
    "cri-dockerd": "unix:///var/run/cri-dockerd.sock",
}

# Shared by the facts and the preflight probe scripts: the encoder, then the sections.
SCRIPT_PRELUDE = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
export PATH LC_ALL=C
s() {
  _name=$1; shift
  printf 'clusterpanel-facts 1 %s ' "$_name"
  "$@" 2>/dev/null </dev/null | od -An -v -tx1 | tr -d ' \n'
  printf '\n'
}
_t() { if command -v timeout >/dev/null 2>&1; then timeout 10 "$@"; else "$@"; fi; }
_has() { command -v "$1" >/dev/null 2>&1; }
echo 'clusterpanel-facts 1 begin'
"""

SCRIPT_FACTS = r"""
_hostname() { cat /proc/sys/kernel/hostname || hostname || uname -n; }
s hostname _hostname
s os_release cat /etc/os-release
s kernel uname -r
s architecture uname -m
_cpus() { nproc || grep -c '^processor' /proc/cpuinfo; }
s cpus _cpus
_meminfo() { grep -E '^(MemTotal|SwapTotal):' /proc/meminfo; }
s meminfo _meminfo
s swaps cat /proc/swaps
_macs() {
  for _f in /sys/class/net/*/address; do
    [ -r "$_f" ] || continue
    _n=${_f%/address}; _n=${_n##*/}
    printf '%s %s\n' "$_n" "$(cat "$_f")"
  done
}
s macs _macs
s product_uuid cat /sys/class/dmi/id/product_uuid
if _has ip; then s ip_addr ip -o addr show; fi
s if_inet6 cat /proc/net/if_inet6
s fib_trie cat /proc/net/fib_trie
_sockets() {
  for _p in /var/run/containerd/containerd.sock /run/containerd/containerd.sock \
            /var/run/crio/crio.sock /run/crio/crio.sock \
            /var/run/cri-dockerd.sock /run/cri-dockerd.sock; do
    [ -S "$_p" ] && echo "$_p"
  done
}
s cri_sockets _sockets
_cgroup() {
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2
  elif [ -d /sys/fs/cgroup ]; then echo v1; fi
}
s cgroup_version _cgroup
if [ -r /etc/containerd/config.toml ]; then
  _ctd() {
    grep -E '^[[:space:]]*SystemdCgroup[[:space:]]*=' /etc/containerd/config.toml; echo present
  }
  s containerd_config _ctd
fi
_crio() {
  for _f in /etc/crio/crio.conf /etc/crio/crio.conf.d/*.conf; do
    [ -r "$_f" ] && grep -E '^[[:space:]]*cgroup_manager[[:space:]]*=' "$_f"
  done
  echo present
}
if [ -e /etc/crio/crio.conf ] || [ -d /etc/crio/crio.conf.d ]; then s crio_config _crio; fi
_kubelet_cfg() { grep -E '^cgroupDriver:' /var/lib/kubelet/config.yaml; echo present; }
if [ -r /var/lib/kubelet/config.yaml ]; then s kubelet_config _kubelet_cfg; fi
if _has kubeadm; then s kubeadm_version _t kubeadm version -o short; fi
if _has kubelet; then s kubelet_version _t kubelet --version; fi
_kubectl() {
  _t kubectl version --client -o json || _t kubectl version --client --short ||
    _t kubectl version --client
}
if _has kubectl; then s kubectl_version _kubectl; fi
if _has containerd; then s containerd_version _t containerd --version; fi
if _has crictl; then s crictl_version _t crictl --version; fi
"""

SCRIPT_END = r"""
echo 'clusterpanel-facts 1 end'
"""

FACTS_SECTIONS = frozenset(
    {
        "hostname", "os_release", "kernel", "architecture", "cpus", "meminfo", "swaps", "macs",
        "product_uuid", "ip_addr", "if_inet6", "fib_trie", "cri_sockets", "cgroup_version",
        "containerd_config", "crio_config", "kubelet_config", "kubeadm_version",
        "kubelet_version", "kubectl_version", "containerd_version", "crictl_version",
    }
)  # fmt: skip

FACTS_SCRIPT = SCRIPT_PRELUDE + SCRIPT_FACTS + SCRIPT_END

_LINE = re.compile(r"\Aclusterpanel-facts 1 ([a-z0-9_]+) ([0-9a-f]*)\Z")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)([-+.~][0-9A-Za-z.+~-]*)?")
_CRIO_MANAGER = re.compile(r"\s*cgroup_manager\s*=\s*[\"']?(systemd|cgroupfs)[\"']?\s*(#.*)?")
_MAC = re.compile(r"\A[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_UUID = re.compile(r"\A[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\Z")


class FactsError(ValueError):
    """The output is not what the script prints: cut short, or forged."""


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Facts takes no parameters."""
    for key in params:
        raise InputError(f"facts takes no parameters; unknown parameter {key!r}", key)
    return {}


def plan(cluster: ClusterSpec, nodes: Sequence[NodeTarget], params: Mapping[str, Any]) -> Plan:
    validate_params(params)
    steps = tuple(
        Step(STEP, node.name, (Command(FACTS_SCRIPT, timeout=60.0),), read_facts) for node in nodes
    )
    return Plan(KIND, (Phase(PHASE, steps),))


def read_facts(context: StepContext) -> Outcome:
    """The step's answer: the facts, or why there are none."""
    if not context.outputs:
        return Outcome("failed", "the facts script did not run")
    output = context.outputs[-1]
    try:
        facts = parse_facts(output.stdout)
    except FactsError as error:
        why = script_failure(output.exit_code, output.timed_out, str(error), output.stderr)
        return Outcome("failed", why)
    return Outcome("succeeded", summary(facts), data=facts)


def script_failure(exit_code: int | None, timed_out: bool, problem: str, stderr: str = "") -> str:
    """Why a script gave no answer. A failed script's last error line usually says it best
    (``sudo: 1 incorrect password attempt``), so it is quoted, cut to 200 characters."""
    if timed_out:
        return f"the script timed out ({problem})"
    if exit_code not in (0, None):
        last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
        said = f": {last[:200]}" if last else f" ({problem})"
        return f"the script exited with code {exit_code}{said}"
    return problem


def summary(facts: Mapping[str, Any]) -> str:
    memory = facts.get("memory_bytes")
    system = " ".join(str(v) for v in (facts.get("os_id"), facts.get("os_version")) if v)
    parts = [
        str(facts.get("hostname") or "unknown hostname"),
        system or "unknown OS",
        f"kernel {facts.get('kernel') or 'unknown'}",
        f"{facts.get('cpus') or '?'} CPUs",
        f"{memory / 2**30:.1f} GiB memory" if isinstance(memory, int) else "memory unknown",
    ]
    return "facts gathered: " + ", ".join(parts)


# --- parsing -----------------------------------------------------------------------------------


def parse_sections(stdout: str, known: frozenset[str]) -> dict[str, str]:
    """The decoded sections between ``begin`` and ``end``; raises ``FactsError``."""
    sections: dict[str, str] = {}
    state = "before"
    for raw in stdout.splitlines():
        line = raw.rstrip("\r")
        if line == f"{MARK} begin":
            if state != "before":
                raise FactsError("the output begins twice")
            state = "inside"
            continue
        if state != "inside":
            continue  # banners before the script, anything after its end
        if line == f"{MARK} end":
            state = "after"
            continue
        match = _LINE.match(line)
        if match is None:
            if line.startswith(MARK):
                raise FactsError("the output holds a malformed section line")
            continue
        name, encoded = match.groups()
        if name not in known:
            raise FactsError(f"the output holds an unknown section {name!r}")
        if name in sections:
            raise FactsError(f"the output names the section {name!r} twice")
        if len(encoded) % 2:
            raise FactsError(f"the section {name!r} is cut short")
        sections[name] = bytes.fromhex(encoded).decode("utf-8", "replace")
    if state == "before":
        raise FactsError("the output does not hold the script's answer")
    if state == "inside":
        raise FactsError("the output ends before the script finished")
    return sections


def parse_facts(stdout: str) -> dict[str, Any]:
    """The facts in the script's output; every value missing on the host is None."""
    return facts_from_sections(parse_sections(stdout, FACTS_SECTIONS))


def facts_from_sections(sections: Mapping[str, str]) -> dict[str, Any]:
    os_release = _os_release(sections.get("os_release", ""))
    meminfo = _meminfo(sections.get("meminfo", ""))
    swaps = parse_swaps(sections.get("swaps"))
    return {
        "hostname": _first_line(sections.get("hostname")),
        "os_id": os_release.get("ID"),
        "os_version": os_release.get("VERSION_ID"),
        "kernel": _first_line(sections.get("kernel")),
        "architecture": _first_line(sections.get("architecture")),
        "cpus": _int(_first_line(sections.get("cpus"))),
        "memory_bytes": meminfo.get("MemTotal"),
        "swap_bytes": None if swaps is None else sum(size for _, size in swaps),
        "swaps": None if swaps is None else [name for name, _ in swaps],
        "mac_addresses": _macs(sections.get("macs", "")),
        "product_uuid": _uuid(sections.get("product_uuid")),
        "ip_addresses": _ip_addresses(sections),
        "cri_sockets": _cri_sockets(sections.get("cri_sockets", "")),
        "cgroup_version": _one_of(_first_line(sections.get("cgroup_version")), ("v1", "v2")),
        "cgroup_driver": {
            "containerd": _containerd_driver(sections.get("containerd_config")),
            "cri-o": _crio_driver(sections.get("crio_config")),
            "kubelet": _kubelet_driver(sections.get("kubelet_config")),
        },
        "versions": {
            "kubeadm": parse_version(sections.get("kubeadm_version")),
            "kubelet": parse_version(sections.get("kubelet_version")),
            "kubectl": _kubectl_version(sections.get("kubectl_version")),
            "containerd": parse_version(sections.get("containerd_version")),
            "crictl": parse_version(sections.get("crictl_version")),
        },
    }


def _first_line(text: str | None) -> str | None:
    if text is None:
        return None
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _one_of(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key] = value
    return values


def _meminfo(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(MemTotal|SwapTotal):\s+(\d+)\s*kB", line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


def parse_swaps(text: str | None) -> list[tuple[str, int]] | None:
    """``/proc/swaps`` as (device, bytes); None when it could not be read."""
    if text is None or not text.strip():
        return None
    swaps: list[tuple[str, int]] = []
    for line in text.splitlines()[1:]:  # the first line is the header
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            swaps.append((fields[0], int(fields[2]) * 1024))
    return swaps


def _macs(text: str) -> dict[str, str]:
    macs: dict[str, str] = {}
    for line in text.splitlines():
        iface, _, mac = line.strip().partition(" ")
        mac = mac.strip().lower()
        if iface and iface != "lo" and _MAC.match(mac) and mac != "00:00:00:00:00:00":
            macs[iface] = mac
    return macs


def _uuid(text: str | None) -> str | None:
    value = _first_line(text)
    return value.lower() if value and _UUID.match(value) else None


def _usable(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return None
    return str(ip)


def _ip_addresses(sections: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    if "ip_addr" in sections:
        for match in re.finditer(r"\binet6? ([0-9A-Fa-f.:]+)/\d+", sections["ip_addr"]):
            found.append(match.group(1))
    else:
        # No ``ip``: IPv4 local addresses are the /32 "host LOCAL" leaves of the FIB trie,
        # IPv6 ones are listed one per line in if_inet6.
        previous = ""
        for line in sections.get("fib_trie", "").splitlines():
            leaf = re.match(r"\s*\|--\s+([0-9.]+)\s*\Z", line)
            if leaf:
                previous = leaf.group(1)
            elif "/32 host LOCAL" in line and previous:
                found.append(previous)
        for line in sections.get("if_inet6", "").splitlines():
            fields = line.split()
            if fields and re.fullmatch(r"[0-9a-f]{32}", fields[0]):
                raw = fields[0]
                found.append(":".join(raw[i : i + 4] for i in range(0, 32, 4)))
    addresses: list[str] = []
    for address in found:
        usable = _usable(address)
        if usable and usable not in addresses:
            addresses.append(usable)
    return addresses


def _cri_sockets(text: str) -> list[str]:
    present: list[str] = []
    for line in text.splitlines():
        path = line.strip()
        for uri in CRI_SOCKETS.values():
            # /var/run is usually a link to /run: both spellings are one socket.
            spellings = (uri.removeprefix("unix://"), uri.removeprefix("unix:///var"))
            if path in spellings and uri not in present:
                present.append(uri)
    return present


def _containerd_driver(text: str | None) -> str | None:
    if text is None:
        return None  # no config file: unknown
    value = None
    for line in text.splitlines():
        match = re.fullmatch(r"\s*SystemdCgroup\s*=\s*(true|false)\s*(#.*)?", line)
        if match:
            value = match.group(1)
    # containerd's runc default is SystemdCgroup = false: a config without it is cgroupfs.
    return "systemd" if value == "true" else "cgroupfs"


def _crio_driver(text: str | None) -> str | None:
    if text is None:
        return None
    value = "systemd"  # CRI-O's default cgroup_manager; drop-ins read later override it
    for line in text.splitlines():
        match = _CRIO_MANAGER.fullmatch(line)
        if match:
            value = match.group(1)
    return value


def _kubelet_driver(text: str | None) -> str | None:
    if text is None:
        return None
    for line in text.splitlines():
        match = re.fullmatch(r"cgroupDriver:\s*[\"']?(systemd|cgroupfs)[\"']?\s*", line)
        if match:
            return match.group(1)
    # The kubelet's own default is cgroupfs; kubeadm writes systemd explicitly.
    return "cgroupfs"


def parse_version(text: str | None) -> str | None:
    """The first ``vX.Y.Z`` in a tool's answer, in Kubernetes' ``v1.31.2`` spelling."""
    if not text:
        return None
    match = _VERSION.search(text)
    if match is None:
        return None
    major, minor, patch, suffix = match.groups()
    return f"v{major}.{minor}.{patch}{suffix or ''}"


def _kubectl_version(text: str | None) -> str | None:
    if not text:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        # ``--short`` or the plain form: "Client Version: v1.27.1"
        match = re.search(r"Client Version:\s*(\S+)", text)
        return parse_version(match.group(1) if match else text)
    client = answer.get("clientVersion") if isinstance(answer, dict) else None
    git_version = client.get("gitVersion") if isinstance(client, dict) else None
    return parse_version(git_version) if isinstance(git_version, str) else None


def version_minor(version: str | None) -> tuple[int, int] | None:
    """``(1, 31)`` from ``v1.31.2``."""
    if not version:
        return None
    match = _VERSION.search(version)
    return (int(match.group(1)), int(match.group(2))) if match else None
