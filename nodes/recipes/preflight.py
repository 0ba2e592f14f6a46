"""The ``preflight`` job: will kubeadm accept these nodes? (KUBEADM.md §11), read-only.

Phase ``probe`` (``continue_on_failure``): per node one step ``probe`` with two commands, a
bare ``date +%s.%N`` (its short round trip bounds the clock reading) and the probe script (the
facts script of ``nodes.recipes.facts`` plus listening ports, modules, sysctls and name
resolution, in the same forgery-proof format). Its outcome is ``succeeded`` whenever the node
answered: the findings are its ``checks``. Phase ``verdict``: one step on the worker that adds
the cross-node checks and fails when any check anywhere failed.

Check names (stable; the app stores and shows them as a nodes-by-checks table):

per node
  ``swap``                    fail when ``/proc/swaps`` lists a device (kubeadm refuses swap)
  ``port-<n>``                fail when something listens on it: control plane 6443, 2379, 2380
                              (stacked etcd), 10250, 10257, 10259; workers 10250; etcd 2379, 2380
  ``port-30000-32767``        warn when something listens in the NodePort range (every node)
  ``br_netfilter``, ``overlay``  fail when the module is neither loaded nor built in
  ``bridge-nf-call-iptables``, ``bridge-nf-call-ip6tables``, ``ip_forward``  fail unless ``1``
  ``cri-socket``              fail when the cluster's runtime has no socket; warn when other
                              runtimes' sockets are present too (the panel names the socket)
  ``cgroup-driver``           fail on cgroupfs (runtime or kubelet); warn when the runtime's
                              driver is unknown; a kubelet not configured yet passes, since
                              kubeadm writes ``cgroupDriver: systemd``
  ``cpus``, ``memory``        control-plane nodes: fail below 2 CPUs / 1700 MB (kubeadm's numbers)
  ``time``                    the clock against the worker's: warn beyond 1 s, fail beyond 30 s
  ``hostname``                warn when the lowercased hostname is not the node name (kubeadm
                              names the node after its hostname unless told ``--node-name``)
  ``hostname-resolves``       warn when ``getent hosts $(hostname)`` finds nothing (kubeadm warns)
  ``kubeadm-version``         fail unless the cluster's minor (one minor newer: warn); absent: pass
  ``kubelet-version``         fail when newer than the cluster or more than 3 minors older; older
                              within 3: warn; absent: pass ("not installed yet")
  ``kubectl-version``         warn beyond ±1 minor; absent: pass
cross-node (``node`` None)
  ``probe``                   fail for each node that gave no answer
  ``unique-hostname``, ``unique-mac``, ``unique-product-uuid``  fail on duplicates (naming the
                              nodes); a missing product_uuid is a warning
  ``pod-subnet-nodes``, ``service-subnet-nodes``  fail when the subnet holds a node's inventory
                              address, warn when it holds another address of a node's interfaces
  ``subnet-overlap``          fail when the pod and service subnets overlap

Parameter ``ignore_preflight_errors`` (as kubeadm's ``--ignore-preflight-errors``): check names,
or ``all``. An ignored check still runs; when it fails it is shown as a warning marked
``(ignored)`` and does not fail the job. ``probe`` cannot be ignored: a node that gave no answer
was not checked at all. The join and bootstrap jobs take the same parameter for their gate
(``nodes.recipes.kubeadm_join``), naming each check (``all`` is refused there).

Thresholds: the clock limits come from etcd, which warns about a peer whose clock differs by more
than 1 s, and from the 60 s leeway the API server allows on token timestamps: two nodes each at
most 30 s off the worker are at most 60 s apart. The skew is the distance of the host's reading
from the interval the ``date`` command ran in, so a slow round trip never counts as skew.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from clusterpanel.errors import InputError
from nodes.recipes import facts as facts_recipe
from nodes.recipes.facts import FactsError, version_minor
from nodes.recipes.plan import (
    Check,
    CheckStatus,
    ClusterSpec,
    Command,
    NodeTarget,
    Outcome,
    Phase,
    Plan,
    Step,
    StepContext,
)

KIND = "preflight"
MUTATING = False
PROBE_PHASE = "probe"
PROBE_STEP = "probe"
VERDICT_PHASE = "verdict"
VERDICT_STEP = "verdict"

CONTROL_PLANE_PORTS = (6443, 2379, 2380, 10250, 10257, 10259)
WORKER_PORTS = (10250,)
ETCD_PORTS = (2379, 2380)
NODE_PORT_RANGE = (30000, 32767)
MIN_CPUS = 2
MIN_MEMORY_MB = 1700  # kubeadm's ControlPlaneMem, compared with MemTotal in MiB
CLOCK_WARN_SECONDS = 1.0
CLOCK_FAIL_SECONDS = 30.0
KUBELET_MAX_OLDER_MINORS = 3
SYSCTLS = (
    ("bridge-nf-call-iptables", "net/bridge/bridge-nf-call-iptables"),
    ("bridge-nf-call-ip6tables", "net/bridge/bridge-nf-call-ip6tables"),
    ("ip_forward", "net/ipv4/ip_forward"),
)
_VERDICT_SHOWN = 6  # failures named in the verdict's sentence; the rest are counted

SCRIPT_PROBE = r"""
_tcp() {
  if [ -r /proc/net/tcp ]; then
    if _has awk; then awk 'FNR > 1 { print $2, $4 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
    else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi
  fi
}
s tcp_listen _tcp
if [ ! -r /proc/net/tcp ] && _has ss; then s ss_listen ss -ltnH; fi
_modules() {
  for _m in br_netfilter overlay; do [ -d "/sys/module/$_m" ] && echo "$_m"; done
  if [ -r /proc/modules ]; then
    while read -r _m _rest; do
      case $_m in br_netfilter|overlay) echo "$_m" ;; esac
    done < /proc/modules
  fi
  grep -qw overlay /proc/filesystems && echo overlay
}
s modules _modules
_sysctls() {
  for _k in net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables \
            net/ipv4/ip_forward; do
    [ -r "/proc/sys/$_k" ] && printf '%s %s\n' "$_k" "$(cat "/proc/sys/$_k")"
  done
}
s sysctls _sysctls
_resolve() { getent hosts "$(cat /proc/sys/kernel/hostname 2>/dev/null || hostname)"; }
if _has getent; then s resolve _resolve; fi
"""

PROBE_SECTIONS = facts_recipe.FACTS_SECTIONS | {
    "tcp_listen",
    "ss_listen",
    "modules",
    "sysctls",
    "resolve",
}
PROBE_SCRIPT = (
    facts_recipe.SCRIPT_PRELUDE + facts_recipe.SCRIPT_FACTS + SCRIPT_PROBE + facts_recipe.SCRIPT_END
)
CLOCK_COMMAND = "date +%s.%N"


# --- ignoring failed checks --------------------------------------------------------------------

IGNORE_PARAM = "ignore_preflight_errors"
IGNORE_ALL = "all"
IGNORED_NOTE = " (ignored)"
MAX_IGNORED = 40
PARAMS = (IGNORE_PARAM,)
# Every check a node or the cross-node verdict may report, but ``probe``: a node that gave no
# answer has no results to ignore. tests/unit keeps this list equal to what the checks emit.
NODE_CHECK_NAMES = (
    "swap",
    *(f"port-{port}" for port in CONTROL_PLANE_PORTS),
    f"port-{NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}",
    "br_netfilter",
    "overlay",
    *(name for name, _ in SYSCTLS),
    "cri-socket",
    "cgroup-driver",
    "cpus",
    "memory",
    "time",
    "hostname",
    "hostname-resolves",
    "kubeadm-version",
    "kubelet-version",
    "kubectl-version",
)
CROSS_CHECK_NAMES = (
    "unique-hostname",
    "unique-mac",
    "unique-product-uuid",
    "pod-subnet-nodes",
    "service-subnet-nodes",
    "subnet-overlap",
)
IGNORABLE_CHECKS = frozenset(NODE_CHECK_NAMES + CROSS_CHECK_NAMES)
NOT_IGNORABLE = "probe"


def validate_ignored(value: Any, *, allow_all: bool = False) -> list[str]:
    """``ignore_preflight_errors``: check names as this job names them, comma-separated text or
    a list, sorted and without repeats; ``["all"]`` for ``all`` when ``allow_all`` (the
    read-only preflight job; a job that changes machines has each check named)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value if item.strip()]
    else:
        raise InputError("must be check names, comma-separated", IGNORE_PARAM)
    if len(items) > MAX_IGNORED:
        raise InputError(f"at most {MAX_IGNORED} check names", IGNORE_PARAM)
    if any(item.lower() == IGNORE_ALL for item in items):
        if not allow_all:
            raise InputError(
                "name each check to ignore; ignoring all preflight errors is refused", IGNORE_PARAM
            )
        if len(items) > 1:
            # As kubeadm: "all" already names every check.
            raise InputError("all ignores every check: name no other check with it", IGNORE_PARAM)
        return [IGNORE_ALL]
    for item in items:
        if item == NOT_IGNORABLE:
            raise InputError(
                "probe cannot be ignored: a node that gave no answer was not checked", IGNORE_PARAM
            )
        if item not in IGNORABLE_CHECKS:
            known = ", ".join(NODE_CHECK_NAMES + CROSS_CHECK_NAMES)
            raise InputError(
                f"{item[:64]!r} is not a preflight check name (the checks: {known})", IGNORE_PARAM
            )
    return sorted(set(items))


# kubeadm runs its own preflight in init and join, under its own check names: what the panel was
# told to ignore is passed on to it (``--ignore-preflight-errors``) under those names. Checks
# kubeadm has no counterpart for (modules, the cgroup driver, the clock, the cross-node ones) map
# to nothing; kubeadm only warns about the hostname and swap, but ignoring them is harmless.
KUBEADM_CHECK_NAMES = {
    "swap": "Swap",
    "cpus": "NumCPU",
    "memory": "Mem",
    "cri-socket": "CRI",
    "hostname": "Hostname",
    "kubelet-version": "KubeletVersion",
    "ip_forward": "FileContent--proc-sys-net-ipv4-ip_forward",
    **{f"port-{port}": f"Port-{port}" for port in CONTROL_PLANE_PORTS},
}


def kubeadm_ignored(ignored: Collection[str]) -> list[str]:
    """The kubeadm check names of the panel's ``ignored`` checks, sorted, for
    ``kubeadm init/join --ignore-preflight-errors`` (``all`` stays ``all``)."""
    if IGNORE_ALL in ignored:
        return [IGNORE_ALL]
    return sorted({KUBEADM_CHECK_NAMES[name] for name in ignored if name in KUBEADM_CHECK_NAMES})


def is_ignored(name: str, ignored: Collection[str]) -> bool:
    return name in IGNORABLE_CHECKS and (IGNORE_ALL in ignored or name in ignored)


def ignoring(checks: Iterable[Check], ignored: Collection[str]) -> tuple[Check, ...]:
    """The checks with each failed one named in ``ignored`` turned into a warning marked
    ``(ignored)``, as kubeadm reports an error it was told to ignore. Already turned checks are
    left as they are, so applying it twice changes nothing."""
    return tuple(
        replace(check, status="warn", message=check.message + IGNORED_NOTE, ignored=True)
        if check.status == "fail" and is_ignored(check.name, ignored)
        else check
        for check in checks
    )


def ignored_names(checks: Iterable[Check]) -> list[str]:
    return sorted({check.name for check in checks if check.ignored})


# --- the plan ----------------------------------------------------------------------------------


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    for key in params:
        if key not in PARAMS:
            raise InputError(f"preflight has no parameter {key!r}", key)
    ignored = validate_ignored(params.get(IGNORE_PARAM), allow_all=True)
    return {IGNORE_PARAM: ignored} if ignored else {}


def plan(cluster: ClusterSpec, nodes: Sequence[NodeTarget], params: Mapping[str, Any]) -> Plan:
    ignored = tuple(validate_params(params).get(IGNORE_PARAM, ()))
    probes = tuple(
        Step(
            PROBE_STEP,
            node.name,
            (Command(CLOCK_COMMAND, timeout=15.0), Command(PROBE_SCRIPT, timeout=60.0)),
            functools.partial(read_probe, cluster, node, ignored),
        )
        for node in nodes
    )
    verdict = Step(
        VERDICT_STEP, None, (), functools.partial(read_verdict, cluster, tuple(nodes), ignored)
    )
    return Plan(
        KIND,
        (Phase(PROBE_PHASE, probes, continue_on_failure=True), Phase(VERDICT_PHASE, (verdict,))),
    )


# --- the probe ---------------------------------------------------------------------------------


def parse_probe(stdout: str) -> dict[str, Any]:
    """The facts plus what the checks need; raises ``FactsError`` on a cut or forged output."""
    sections = facts_recipe.parse_sections(stdout, PROBE_SECTIONS)
    found = facts_recipe.facts_from_sections(sections)
    found["listening_ports"] = _listening_ports(sections)
    modules = set((sections.get("modules") or "").split())
    sysctls = _sysctls(sections.get("sysctls"))
    if "net/bridge/bridge-nf-call-iptables" in sysctls:
        modules.add("br_netfilter")  # built into the kernel: no module, but its sysctls exist
    found["modules"] = {name: name in modules for name in ("br_netfilter", "overlay")}
    found["sysctls"] = {name: sysctls.get(path) for name, path in SYSCTLS}
    found["hostname_addresses"] = _resolved(sections.get("resolve"))
    return found


def _listening_ports(sections: Mapping[str, str]) -> list[int] | None:
    ports: set[int] = set()
    if sections.get("tcp_listen"):
        for line in sections["tcp_listen"].splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[0].endswith(":"):
                local, state = fields[1], fields[3]  # the raw /proc/net/tcp line
            elif len(fields) == 2:
                local, state = fields
            else:
                continue
            port = re.fullmatch(r"[0-9A-Fa-f]+:([0-9A-Fa-f]{4})", local)
            if port and state == "0A":  # TCP_LISTEN
                ports.add(int(port.group(1), 16))
        return sorted(ports)
    if sections.get("ss_listen"):
        for line in sections["ss_listen"].splitlines():
            fields = line.split()
            if len(fields) >= 4:
                port = re.search(r":(\d+)\Z", fields[3])
                if port:
                    ports.add(int(port.group(1)))
        return sorted(ports)
    return None


def _sysctls(text: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key and value.strip():
            values[key] = value.strip()
    return values


def _resolved(text: str | None) -> list[str] | None:
    if text is None:
        return None
    addresses = []
    for line in text.splitlines():
        fields = line.split()
        if fields:
            try:
                addresses.append(str(ipaddress.ip_address(fields[0])))
            except ValueError:
                continue
    return addresses


def read_probe(
    cluster: ClusterSpec, node: NodeTarget, ignored: Collection[str], context: StepContext
) -> Outcome:
    if len(context.outputs) < 2:
        # The clock reading failed, so the probe never started (sudo refused, say).
        first = context.outputs[0] if context.outputs else None
        if first is None:
            return Outcome("failed", "the probe did not run")
        why = facts_recipe.script_failure(
            first.exit_code, first.timed_out, "the probe did not run to its end", first.stderr
        )
        return Outcome("failed", why)
    clock, script = context.outputs[0], context.outputs[1]
    try:
        found = parse_probe(script.stdout)
    except FactsError as error:
        return Outcome(
            "failed",
            facts_recipe.script_failure(
                script.exit_code, script.timed_out, str(error), script.stderr
            ),
        )
    found["clock_skew_seconds"] = clock_skew(clock.stdout, clock.started_at, clock.finished_at)
    checks = ignoring(node_checks(cluster, node, found), ignored)
    return Outcome("succeeded", _tally(checks), data=found, checks=checks)


def clock_skew(stdout: str, started_at: float, finished_at: float) -> float | None:
    """How far the host's clock is ahead (+) or behind (-) the worker's, beyond the uncertainty
    of the round trip; 0.0 when the reading falls inside it, None when there is none."""
    match = re.match(r"\s*(\d+(?:\.\d+)?)", stdout)
    if match is None:
        return None
    host = float(match.group(1))
    if host < started_at:
        return host - started_at
    if host > finished_at:
        return host - finished_at
    return 0.0


def _tally(checks: Sequence[Check]) -> str:
    failed = sum(check.status == "fail" for check in checks)
    warned = sum(check.status == "warn" and not check.ignored for check in checks)
    ignored = sum(check.ignored for check in checks)
    if not failed and not warned and not ignored:
        return f"all {len(checks)} checks passed"
    parts = [f"{failed} {_plural(failed, 'check')} failed"] if failed else []
    if warned:
        parts.append(f"{warned} {_plural(warned, 'warning')}")
    if ignored:
        parts.append(f"{ignored} failed but ignored")
    return ", ".join(parts)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def node_checks(cluster: ClusterSpec, node: NodeTarget, found: Mapping[str, Any]) -> list[Check]:
    """Every per-node check, in a fixed order."""
    checks: list[Check] = []

    def add(name: str, status: CheckStatus, message: str) -> None:
        checks.append(Check(node.name, name, status, message))

    # 1. Swap.
    swaps, swap_bytes = found.get("swaps"), found.get("swap_bytes")
    if swaps is None:
        add("swap", "warn", "cannot read /proc/swaps")
    elif swaps:
        add("swap", "fail", f"swap is on ({', '.join(swaps)}, {_gib(swap_bytes or 0)})")
    else:
        add("swap", "pass", "swap is off")

    # 2. Ports.
    listening = found.get("listening_ports")
    for port in required_ports(cluster, node):
        if listening is None:
            add(f"port-{port}", "warn", f"cannot tell whether port {port} is free")
        elif port in listening:
            add(f"port-{port}", "fail", f"port {port} is in use")
        else:
            add(f"port-{port}", "pass", f"port {port} is free")
    low, high = NODE_PORT_RANGE
    if listening is not None:
        busy = [port for port in listening if low <= port <= high]
        name = f"port-{low}-{high}"
        if busy:
            shown = ", ".join(str(port) for port in busy[:5])
            add(name, "warn", f"NodePort range ports in use: {shown}")
        else:
            add(name, "pass", "the NodePort range is free")

    # 3. Kernel modules and sysctls.
    modules = found.get("modules") or {}
    for module in ("br_netfilter", "overlay"):
        if modules.get(module):
            add(module, "pass", f"{module} is loaded")
        else:
            add(module, "fail", f"the {module} module is not loaded")
    sysctls = found.get("sysctls") or {}
    for name, path in SYSCTLS:
        key = path.replace("/", ".")
        value = sysctls.get(name)
        if value == "1":
            add(name, "pass", f"{key} = 1")
        elif value is None:
            add(name, "fail", f"{key} is not available")
        else:
            add(name, "fail", f"{key} is {value}, not 1")

    # 4. Container runtime socket and cgroup driver.
    checks.append(_cri_socket_check(cluster, node, found.get("cri_sockets") or []))
    checks.append(_cgroup_check(cluster, node, found.get("cgroup_driver") or {}))

    # 5. Capacity (kubeadm checks it on control-plane nodes only).
    if node.role == "control-plane":
        cpus = found.get("cpus")
        if cpus is None:
            add("cpus", "warn", "cannot count the CPUs")
        elif cpus < MIN_CPUS:
            add("cpus", "fail", f"{cpus} CPU, a control-plane node needs {MIN_CPUS}")
        else:
            add("cpus", "pass", f"{cpus} CPUs")
        memory = found.get("memory_bytes")
        if memory is None:
            add("memory", "warn", "cannot read the memory size")
        elif memory // 2**20 < MIN_MEMORY_MB:
            add(
                "memory", "fail",
                f"{memory // 2**20} MB of memory, a control-plane node needs {MIN_MEMORY_MB} MB",
            )  # fmt: skip
        else:
            add("memory", "pass", f"{memory // 2**20} MB of memory")

    # 6. Clock.
    skew = found.get("clock_skew_seconds")
    if skew is None:
        add("time", "warn", "cannot read the clock")
    else:
        side = "ahead of" if skew > 0 else "behind"
        text = f"the clock is {abs(skew):.1f} s {side} the panel's"
        if abs(skew) > CLOCK_FAIL_SECONDS:
            add("time", "fail", text)
        elif abs(skew) > CLOCK_WARN_SECONDS:
            add("time", "warn", text)
        else:
            add("time", "pass", "the clock agrees with the panel's")

    # 7. Hostname.
    hostname = found.get("hostname")
    if not hostname:
        add("hostname", "warn", "cannot read the hostname")
    elif hostname.lower() != node.name:
        add(
            "hostname", "warn",
            f"the hostname {hostname} is not the node name {node.name} (kubeadm needs --node-name)",
        )  # fmt: skip
    else:
        add("hostname", "pass", f"the hostname is {hostname}")
    resolved = found.get("hostname_addresses")
    if resolved is None:
        add("hostname-resolves", "warn", "cannot resolve the hostname (no getent)")
    elif not resolved:
        add("hostname-resolves", "warn", f"the hostname {hostname} does not resolve")
    else:
        add("hostname-resolves", "pass", f"the hostname resolves to {', '.join(resolved[:3])}")

    # 8. Kubernetes version skew.
    checks.extend(version_checks(cluster, node, found.get("versions") or {}))
    return checks


def required_ports(cluster: ClusterSpec, node: NodeTarget) -> tuple[int, ...]:
    if node.role == "control-plane":
        if cluster.etcd_topology == "external":
            return tuple(port for port in CONTROL_PLANE_PORTS if port not in ETCD_PORTS)
        return CONTROL_PLANE_PORTS
    if node.role == "etcd":
        return ETCD_PORTS
    return WORKER_PORTS


def _runtime(cluster: ClusterSpec) -> str:
    return "cri-o" if cluster.container_runtime.lower() in ("cri-o", "crio") else "containerd"


def _cri_socket_check(cluster: ClusterSpec, node: NodeTarget, sockets: Sequence[str]) -> Check:
    runtime = _runtime(cluster)
    wanted = facts_recipe.CRI_SOCKETS[runtime]
    if not sockets:
        return Check(node.name, "cri-socket", "fail", "no container runtime socket found")
    if wanted not in sockets:
        return Check(
            node.name, "cri-socket", "fail",
            f"no {runtime} socket ({wanted}); found {', '.join(sockets)}",
        )  # fmt: skip
    if len(sockets) > 1:
        others = ", ".join(socket for socket in sockets if socket != wanted)
        return Check(
            node.name, "cri-socket", "warn",
            f"several runtime sockets ({others} besides {wanted}); kubeadm is given {wanted}",
        )  # fmt: skip
    return Check(node.name, "cri-socket", "pass", f"{runtime} at {wanted}")


def _cgroup_check(cluster: ClusterSpec, node: NodeTarget, drivers: Mapping[str, Any]) -> Check:
    runtime = _runtime(cluster)
    runtime_driver, kubelet_driver = drivers.get(runtime), drivers.get("kubelet")

    def check(status: CheckStatus, message: str) -> Check:
        return Check(node.name, "cgroup-driver", status, message)

    if runtime_driver == "cgroupfs":
        return check("fail", f"{runtime} uses the cgroupfs cgroup driver, not systemd")
    if kubelet_driver == "cgroupfs":
        return check("fail", "the kubelet uses the cgroupfs cgroup driver, not systemd")
    if runtime_driver is None:
        return check("warn", f"cannot tell {runtime}'s cgroup driver (no configuration found)")
    if kubelet_driver is None:
        return check("pass", f"{runtime} uses systemd; kubeadm will configure the kubelet so")
    return check("pass", f"{runtime} and the kubelet use systemd")


def version_checks(
    cluster: ClusterSpec, node: NodeTarget, versions: Mapping[str, Any]
) -> list[Check]:
    target = version_minor(cluster.kubernetes_version)
    checks: list[Check] = []
    for tool in ("kubeadm", "kubelet", "kubectl"):
        name = f"{tool}-version"
        installed = versions.get(tool)
        have = version_minor(installed)
        if installed is None:
            checks.append(Check(node.name, name, "pass", f"{tool} is not installed yet"))
            continue
        if have is None or target is None or have[0] != target[0]:
            checks.append(Check(node.name, name, "warn", f"cannot compare {tool} {installed}"))
            continue
        status, message = _skew(tool, installed, have[1] - target[1], cluster.kubernetes_version)
        checks.append(Check(node.name, name, status, message))
    return checks


def _skew(tool: str, installed: str, ahead: int, wanted: str) -> tuple[CheckStatus, str]:
    """``ahead``: installed minor minus the cluster's."""
    said = f"{tool} {installed}"
    if tool == "kubeadm":
        if ahead == 0:
            return "pass", f"{said} matches {wanted}"
        if ahead == 1:
            return "warn", f"{said} is one minor newer than {wanted}; kubeadm supports it"
        return "fail", f"{said} cannot install {wanted}"
    if tool == "kubelet":
        if ahead == 0:
            return "pass", f"{said} matches {wanted}"
        if ahead > 0:
            return "fail", f"{said} is newer than the cluster's {wanted}"
        if -ahead <= KUBELET_MAX_OLDER_MINORS:
            return "warn", f"{said} is {-ahead} {_plural(-ahead, 'minor')} older than {wanted}"
        return "fail", f"{said} is more than {KUBELET_MAX_OLDER_MINORS} minors older than {wanted}"
    if abs(ahead) <= 1:
        return "pass", f"{said} is within one minor of {wanted}"
    return "warn", f"{said} is {abs(ahead)} minors away from {wanted}"


# --- the verdict -------------------------------------------------------------------------------


def read_verdict(
    cluster: ClusterSpec,
    nodes: Sequence[NodeTarget],
    ignored: Collection[str],
    context: StepContext,
) -> Outcome:
    probes: dict[str, Outcome] = {}
    for (phase, step, node), outcome in context.earlier.items():
        if phase == PROBE_PHASE and step == PROBE_STEP and node is not None:
            probes[node] = outcome
    cross = list(ignoring(cross_node_checks(cluster, nodes, probes), ignored))
    # The probes turned their own ignored checks already; turning again changes nothing, and
    # covers probe outcomes read back from the database (a retry keeps the steps that passed).
    per_node = (check for node in nodes for check in _node_checks(probes.get(node.name)))
    every = [*ignoring(per_node, ignored), *cross]
    failed = [check for check in every if check.status == "fail"]
    warned = sum(check.status == "warn" and not check.ignored for check in every)
    skipped = ignored_names(every)
    if failed:
        problems = [
            check.message if check.node is None else f"{check.message} on {check.node}"
            for check in failed[:_VERDICT_SHOWN]
        ]
        more = len(failed) - _VERDICT_SHOWN
        if more > 0:
            problems.append(f"{more} more {_plural(more, 'problem')}")
        message = "; ".join(problems)
        status: Any = "failed"
    else:
        count = len(nodes)
        passed = "all other checks passed" if skipped else "all checks passed"
        message = f"{passed} on {count} {_plural(count, 'node')}"
        if warned:
            message += f", {warned} {_plural(warned, 'warning')}"
        status = "succeeded"
    if skipped:
        message += f"; ignored as asked: {', '.join(skipped)}"
    data = {
        "failed": len(failed),
        "warnings": warned,
        "ignored": sum(check.ignored for check in every),
        "ignored_checks": skipped,
        "passed": sum(check.status == "pass" for check in every),
    }
    return Outcome(status, message, data=data, checks=tuple(cross))


def _node_checks(outcome: Outcome | None) -> tuple[Check, ...]:
    return outcome.checks if outcome is not None else ()


def cross_node_checks(
    cluster: ClusterSpec, nodes: Sequence[NodeTarget], probes: Mapping[str, Outcome]
) -> list[Check]:
    checks: list[Check] = []
    answered: dict[str, Mapping[str, Any]] = {}
    for node in nodes:
        outcome = probes.get(node.name)
        if outcome is None or outcome.status != "succeeded":
            why = outcome.message if outcome is not None and outcome.message else "no answer"
            checks.append(Check(None, "probe", "fail", f"{node.name} was not probed ({why})"))
        else:
            answered[node.name] = outcome.data

    # Uniqueness: hostnames (kubeadm lowercases them), MAC addresses, product_uuids.
    def duplicates(name: str, what: str, values: dict[str, list[str]]) -> None:
        found = False
        for value, holders in values.items():
            if len(holders) > 1:
                found = True
                checks.append(
                    Check(None, name, "fail", f"duplicate {what} {value} on {_and(holders)}")
                )
        if not found:
            checks.append(Check(None, name, "pass", f"every {what} is unique"))

    hostnames: dict[str, list[str]] = {}
    macs: dict[str, list[str]] = {}
    uuids: dict[str, list[str]] = {}
    no_uuid: list[str] = []
    for holder, data in answered.items():
        if data.get("hostname"):
            hostnames.setdefault(str(data["hostname"]).lower(), []).append(holder)
        for iface, mac in sorted((data.get("mac_addresses") or {}).items()):
            macs.setdefault(mac, []).append(f"{holder} ({iface})")
        if data.get("product_uuid"):
            uuids.setdefault(str(data["product_uuid"]), []).append(holder)
        else:
            no_uuid.append(holder)
    duplicates("unique-hostname", "hostname", hostnames)
    duplicates("unique-mac", "MAC address", macs)
    duplicates("unique-product-uuid", "product_uuid", uuids)
    if no_uuid and checks[-1].status == "pass":
        message = f"no product_uuid on {_and(no_uuid)}"
        checks[-1] = Check(None, "unique-product-uuid", "warn", message)

    # Subnets: neither may hold a node, and they may not overlap each other.
    pods, services = _networks(cluster.pod_subnet), _networks(cluster.service_subnet)
    for name, label, networks in (
        ("pod-subnet-nodes", "pod subnet", pods),
        ("service-subnet-nodes", "service subnet", services),
    ):
        checks.append(_subnet_check(name, label, networks, nodes, answered))
    overlaps = [
        f"{pod} overlaps the service subnet {service}"
        for pod in pods
        for service in services
        if pod.version == service.version and pod.overlaps(service)
    ]
    if overlaps:
        message = "the pod subnet " + "; ".join(overlaps)
        checks.append(Check(None, "subnet-overlap", "fail", message))
    else:
        message = "the pod and service subnets are apart"
        checks.append(Check(None, "subnet-overlap", "pass", message))
    return checks


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for part in text.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            continue
    return networks


def _subnet_check(
    name: str,
    label: str,
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    nodes: Sequence[NodeTarget],
    answered: Mapping[str, Mapping[str, Any]],
) -> Check:
    inventory: list[str] = []
    interfaces: list[str] = []
    for node in nodes:
        try:
            address = ipaddress.ip_address(node.address)
        except ValueError:
            address = None  # a DNS name: its interface addresses below still count
        if address is not None and any(address in network for network in networks):
            inventory.append(f"the address {address} of {node.name}")
        for other in (answered.get(node.name) or {}).get("ip_addresses") or ():
            ip = ipaddress.ip_address(other)
            if ip != address and any(ip in network for network in networks):
                interfaces.append(f"{ip} on {node.name}")
    shown = ", ".join(str(network) for network in networks)
    if inventory:
        return Check(None, name, "fail", f"the {label} {shown} contains {_and(inventory)}")
    if interfaces:
        message = f"the {label} {shown} contains interface addresses {_and(interfaces)}"
        return Check(None, name, "warn", message)
    return Check(None, name, "pass", f"the {label} holds no node address")


def checks_of(outcomes: Mapping[Any, Outcome] | Iterable[Outcome]) -> list[Check]:
    """Every check of a preflight run, per-node ones first (in node order), then cross-node."""
    values = outcomes.values() if isinstance(outcomes, Mapping) else outcomes
    every = [check for outcome in values for check in outcome.checks]
    return [c for c in every if c.node is not None] + [c for c in every if c.node is None]
