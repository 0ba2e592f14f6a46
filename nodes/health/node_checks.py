"""The checks that run on a node itself (no Django): components bound to 127.0.0.1 and the
container runtime, all from one SSH command.

``script`` builds one POSIX shell script that runs every check of a node's role in turn, each
under its own timeout, and prints one line per check::

    CHECK <component> <exit code> <milliseconds> <first 300 bytes of its output on one line>

``parse`` turns those lines into results; a check whose line is missing (the script was killed)
is unknown. kube-controller-manager and kube-scheduler serve /healthz over HTTPS with a
self-signed certificate on 127.0.0.1, so curl skips verification there (``-k``), as the node
itself is the only client that can reach them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from nodes.health.probes import HEALTHY, UNHEALTHY, UNKNOWN, ProbeResult

CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KUBELET = "kubelet"
KUBE_PROXY = "kube-proxy"
RUNTIME = "container-runtime"

RUNTIME_SOCKETS = {
    "containerd": "/var/run/containerd/containerd.sock",
    "cri-o": "/var/run/crio/crio.sock",
}


@dataclass(frozen=True)
class NodeCheck:
    component: str
    target: str  # what was checked, shown beside the result (a URL, a socket)


_HTTP = {
    CONTROLLER_MANAGER: "https://127.0.0.1:10257/healthz",
    SCHEDULER: "https://127.0.0.1:10259/healthz",
    KUBELET: "http://127.0.0.1:10248/healthz",
    KUBE_PROXY: "http://127.0.0.1:10256/healthz",
}

_BY_ROLE = {
    "control-plane": (CONTROLLER_MANAGER, SCHEDULER, KUBELET, KUBE_PROXY, RUNTIME),
    "worker": (KUBELET, KUBE_PROXY, RUNTIME),
    "etcd": (),
}

# curl's exit codes an operator meets here, in words.
_CURL_REASONS = {
    6: "the host name does not resolve",
    7: "connection refused: nothing listens there",
    28: "no answer within the timeout",
    35: "TLS handshake failed",
    52: "empty reply",
    56: "connection reset",
}


def checks_for(role: str, runtime: str) -> list[NodeCheck]:
    """The node-side checks of a node of ``role`` whose runtime is ``runtime``."""
    out = []
    for component in _BY_ROLE.get(role, ()):
        if component == RUNTIME:
            socket_path = RUNTIME_SOCKETS.get(runtime, RUNTIME_SOCKETS["containerd"])
            out.append(NodeCheck(component, f"unix://{socket_path}"))
        else:
            out.append(NodeCheck(component, _HTTP[component]))
    return out


def _command(check: NodeCheck, timeout: float) -> str:
    seconds = f"{max(1.0, timeout):g}"
    q = shlex.quote
    if check.component == RUNTIME:
        socket_path = check.target.removeprefix("unix://")
        # crictl asks the runtime itself; without crictl, the socket's presence is what is known.
        return (
            f"if command -v crictl >/dev/null 2>&1; then "
            f"CONTAINER_RUNTIME_ENDPOINT={q(check.target)} timeout {seconds} crictl info; "
            f"else test -S {q(socket_path)} && echo socket present; fi"
        )
    insecure = "-k " if check.target.startswith("https://") else ""
    return f"curl -fsS {insecure}-m {seconds} {q(check.target)}"


def script(checks: list[NodeCheck], timeout: float) -> str:
    """One script running ``checks`` in turn, one ``CHECK`` line each."""
    lines = [
        "_ms() { echo $(($(date +%s%N) / 1000000)); }",
        "_check() {",
        '  _name=$1; shift; _s=$(_ms); _out=$(eval "$1" 2>&1); _rc=$?; _e=$(_ms)',
        "  _out=$(printf '%s' \"$_out\" | tr '\\r\\n\\t' '   ' | cut -c1-300)",
        '  printf \'CHECK %s %s %s %s\\n\' "$_name" "$_rc" "$((_e - _s))" "$_out"',
        "}",
    ]
    for check in checks:
        lines.append(
            f"_check {shlex.quote(check.component)} {shlex.quote(_command(check, timeout))}"
        )
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def _result(check: NodeCheck, code: int, ms: float, output: str) -> ProbeResult:
    if check.component == RUNTIME:
        if code == 0 and '"RuntimeReady","status":false' not in output.replace(" ", ""):
            return ProbeResult(HEALTHY, ms, "runtime ready")
        return ProbeResult(UNHEALTHY, ms, f"runtime not ready (exit {code}): {output}".strip())
    if code == 0:
        return ProbeResult(HEALTHY, ms, output or "ok")
    reason = _CURL_REASONS.get(code, "")
    detail = "; ".join(part for part in (reason, output) if part)
    return ProbeResult(UNHEALTHY, ms, f"healthz failed (curl exit {code}): {detail}")


def parse(output: str, checks: list[NodeCheck]) -> dict[str, ProbeResult]:
    """The result of every check in ``checks`` from the script's output."""
    seen: dict[str, tuple[int, float, str]] = {}
    for line in output.splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 4 or parts[0] != "CHECK" or not parts[2].lstrip("-").isdigit():
            continue
        ms = float(parts[3]) if parts[3].isdigit() else 0.0
        seen[parts[1]] = (int(parts[2]), ms, parts[4].strip() if len(parts) > 4 else "")
    results = {}
    for check in checks:
        if check.component in seen:
            results[check.component] = _result(check, *seen[check.component])
        else:
            results[check.component] = ProbeResult(UNKNOWN, 0.0, "the check did not report")
    return results
