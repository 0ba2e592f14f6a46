"""Health probes of the components the panel reaches over the network (no Django).

Each probe is one HTTPS request: TLS verified against the component's CA and the address it was
dialled at (SAN check), the panel's client certificate where the component wants one, and one
deadline for connect, handshake, request and answer together, so a server that accepts the TCP
connection and never answers costs exactly one timeout. A probe never raises: it returns a
``ProbeResult`` whose message names the exact reason (the TLS verification error as ssl reports
it, the ``[-]`` lines of a failed ``/readyz?verbose``, etcd's alarm).

The requests are HTTP/1.0 so that no server answers in chunks and the answer ends with the
connection; the bodies are small (``max_body`` caps them).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
UNKNOWN = "unknown"
STATUSES = (HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN)

# etcd alarms that make a member refuse writes (NOSPACE) or mean its data is damaged (CORRUPT).
SERIOUS_ALARMS = ("NOSPACE", "CORRUPT")


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate and its key, PEM. The repr shows no key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class ProbeResult:
    status: str
    latency_ms: float
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    latency_ms: float


class ProbeError(Exception):
    """The request got no HTTP answer; ``str()`` is the reason for the operator."""


@functools.lru_cache(maxsize=128)
def _context(ca_pem: bytes, cert_pem: bytes | None, key_pem: bytes | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if cert_pem is not None and key_pem is not None:
        # ssl loads a chain only from a file: a 0600 file in a private directory, gone at once.
        with tempfile.TemporaryDirectory(prefix="clusterpanel-probe-") as directory:
            path = os.path.join(directory, "client.pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
            context.load_cert_chain(path)
    return context


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _tls_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or str(exc)
        return f"TLS: certificate verify failed: {detail}"
    return f"TLS: {exc.reason or exc}"


def request(
    address: str,
    port: int,
    path: str,
    *,
    ca_pem: bytes,
    client: ClientIdentity | None = None,
    timeout: float = 5.0,
    body: bytes | None = None,
    max_body: int = 1 << 20,
) -> Answer:
    """One HTTPS request to ``address:port``; the server's certificate must be signed by
    ``ca_pem`` and valid for ``address``. Raises ``ProbeError`` with the reason when no HTTP
    answer came within ``timeout`` seconds (all of it, not per step)."""
    started = time.monotonic()
    deadline = started + timeout
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        context = _context(
            ca_pem, client.cert_pem if client else None, client.key_pem if client else None
        )
    except (ssl.SSLError, ValueError) as exc:
        raise ProbeError(f"the CA or the client certificate cannot be loaded: {exc}") from exc
    method = "GET" if body is None else "POST"
    host = where if ":" in address else address
    head = f"{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: */*\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    payload = (head + "\r\n").encode() + (body or b"")
    chunks: list[bytes] = []
    try:
        raw = socket.create_connection((address, port), timeout=_remaining(deadline))
        with raw:
            raw.settimeout(_remaining(deadline))
            with context.wrap_socket(raw, server_hostname=address) as tls:
                tls.settimeout(_remaining(deadline))
                tls.sendall(payload)
                size = 0
                while True:
                    tls.settimeout(_remaining(deadline))
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > max_body + 65536:
                        raise ProbeError(f"{where} answered more than {max_body} bytes")
                    chunks.append(chunk)
    except TimeoutError:
        raise ProbeError(f"no answer from {where} within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise ProbeError(_tls_reason(exc)) from exc
    except ConnectionRefusedError:
        raise ProbeError(f"connection to {where} refused") from None
    except OSError as exc:
        raise ProbeError(f"cannot reach {where}: {exc.strerror or exc}") from exc
    latency_ms = (time.monotonic() - started) * 1000
    return _parse(b"".join(chunks), where, latency_ms)


def _parse(data: bytes, where: str, latency_ms: float) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProbeError(f"{where} answered something that is not HTTP")
    return Answer(int(parts[1]), body, latency_ms)


def _text(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace").replace("\x00", "").strip()
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- kube-apiserver


def apiserver(
    address: str,
    port: int,
    endpoint: str,
    *,
    ca_pem: bytes,
    client: ClientIdentity | None,
    timeout: float,
) -> ProbeResult:
    """``/livez?verbose`` or ``/readyz?verbose`` (``endpoint`` is ``livez`` or ``readyz``).
    200 is healthy; any other answer is unhealthy with the ``[-]`` lines as the reason."""
    started = time.monotonic()
    try:
        answer = request(address, port, f"/{endpoint}?verbose", ca_pem=ca_pem, client=client,
                         timeout=timeout)  # fmt: skip
    except ProbeError as exc:
        return ProbeResult(UNHEALTHY, (time.monotonic() - started) * 1000, str(exc))
    text = answer.body.decode("utf-8", "replace")
    failed = [line.strip() for line in text.splitlines() if line.strip().startswith("[-]")]
    if answer.status == 200:
        return ProbeResult(HEALTHY, answer.latency_ms, f"{endpoint} ok")
    if answer.status in (401, 403):
        return ProbeResult(
            DEGRADED,
            answer.latency_ms,
            f"{endpoint} answered HTTP {answer.status}: the panel's client identity is not "
            f"allowed ({_text(answer.body, 120)})",
        )
    reason = "; ".join(failed) if failed else _text(answer.body)
    return ProbeResult(
        UNHEALTHY,
        answer.latency_ms,
        f"{endpoint} failed (HTTP {answer.status}): {reason}",
        {"failed": failed},
    )


# --------------------------------------------------------------------------- etcd


def _json(answer: Answer) -> dict[str, Any]:
    try:
        value = json.loads(answer.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def etcd_health(
    address: str, port: int, *, ca_pem: bytes, client: ClientIdentity, timeout: float
) -> ProbeResult:
    """etcd's ``/health`` with the healthcheck client certificate: ``{"health":"true"}``.
    When it is false without a reason (etcd 3.4), the member's status says why."""
    started = time.monotonic()
    try:
        answer = request(address, port, "/health", ca_pem=ca_pem, client=client, timeout=timeout)
    except ProbeError as exc:
        return ProbeResult(UNHEALTHY, (time.monotonic() - started) * 1000, str(exc))
    value = _json(answer)
    if answer.status == 200 and value.get("health") == "true":
        return ProbeResult(HEALTHY, answer.latency_ms, "etcd health true")
    reason = value.get("reason") or ""
    if not reason:
        # etcd 3.4 says only {"health":"false"}; its status says why (no leader, an alarm).
        left = max(0.5, timeout - (time.monotonic() - started))
        reason = _status_reason(address, port, ca_pem=ca_pem, client=client, timeout=left)
    return ProbeResult(
        UNHEALTHY,
        answer.latency_ms,
        f"etcd health false (HTTP {answer.status}): {reason or _text(answer.body)}",
    )


def _status_reason(
    address: str, port: int, *, ca_pem: bytes, client: ClientIdentity, timeout: float
) -> str:
    """Why a member is unhealthy, from its own ``Status`` (answered without a quorum): no
    leader, and the errors it lists (alarms); "" when it does not answer that either."""
    try:
        answer = request(address, port, "/v3/maintenance/status", ca_pem=ca_pem, client=client,
                         timeout=timeout, body=b"{}")  # fmt: skip
    except ProbeError:
        return ""
    value = _json(answer)
    if answer.status != 200:
        return str(value.get("error") or value.get("message") or "")
    reasons = [" ".join(str(error).split()) for error in value.get("errors") or []]
    no_leader = str(value.get("leader") or "0") == "0"  # JSON leaves a zero leader out
    if no_leader and not any("no leader" in reason for reason in reasons):
        reasons.insert(0, "no leader")
    return "; ".join(r for r in reasons if r)


def etcd_alarms(
    address: str, port: int, *, ca_pem: bytes, client: ClientIdentity, timeout: float
) -> ProbeResult:
    """The alarms of the etcd cluster (v3 JSON gateway); NOSPACE or CORRUPT is unhealthy."""
    started = time.monotonic()
    try:
        answer = request(address, port, "/v3/maintenance/alarm", ca_pem=ca_pem, client=client,
                         timeout=timeout, body=b'{"action":"GET"}')  # fmt: skip
    except ProbeError as exc:
        return ProbeResult(UNKNOWN, (time.monotonic() - started) * 1000, str(exc))
    if answer.status != 200:
        reason = f"alarm list failed (HTTP {answer.status}): {_text(answer.body)}"
        return ProbeResult(UNKNOWN, answer.latency_ms, reason)
    alarms = [
        (str(a.get("alarm", "")), str(a.get("memberID", "")))
        for a in _json(answer).get("alarms") or []
        if isinstance(a, dict) and a.get("alarm") not in (None, "", "NONE")
    ]
    if not alarms:
        return ProbeResult(HEALTHY, answer.latency_ms, "no alarms")
    named = ", ".join(f"{alarm} on member {member_id}" for alarm, member_id in alarms)
    serious = any(alarm in SERIOUS_ALARMS for alarm, _ in alarms)
    return ProbeResult(
        UNHEALTHY if serious else DEGRADED,
        answer.latency_ms,
        f"etcd alarm raised: {named}",
        {"alarms": [alarm for alarm, _ in alarms]},
    )


def etcd_members(
    address: str,
    port: int,
    *,
    ca_pem: bytes,
    client: ClientIdentity,
    timeout: float,
    expected: int | None = None,
) -> ProbeResult:
    """The member list; a member that never started (no name yet) or fewer members than the
    inventory has make it degraded."""
    started = time.monotonic()
    try:
        answer = request(address, port, "/v3/cluster/member/list", ca_pem=ca_pem, client=client,
                         timeout=timeout, body=b"{}")  # fmt: skip
    except ProbeError as exc:
        return ProbeResult(UNKNOWN, (time.monotonic() - started) * 1000, str(exc))
    if answer.status != 200:
        reason = f"member list failed (HTTP {answer.status}): {_text(answer.body)}"
        return ProbeResult(UNKNOWN, answer.latency_ms, reason)
    members = [m for m in _json(answer).get("members") or [] if isinstance(m, dict)]
    names = sorted(str(m.get("name") or "") for m in members)
    unstarted = sum(1 for name in names if not name)
    message = f"{len(members)} members: {', '.join(n for n in names if n)}"
    data = {"members": [n for n in names if n]}
    if unstarted:
        return ProbeResult(DEGRADED, answer.latency_ms, f"{message}; {unstarted} not started", data)
    if expected is not None and len(members) < expected:
        return ProbeResult(
            DEGRADED, answer.latency_ms, f"{message}; the inventory has {expected}", data
        )
    return ProbeResult(HEALTHY, answer.latency_ms, message, data)
