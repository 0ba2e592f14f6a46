"""Configuration for a TCP load balancer in front of the kube-apiservers.

kubeadm's high-availability guide puts a layer-4 balancer on the controlPlaneEndpoint. Two renderers
produce complete configuration files: nginx (``stream`` module) and HAProxy (``mode tcp`` with an
HTTPS ``/readyz`` health check, so an apiserver that is up but not ready gets no traffic). Every
value is validated before any text is produced, so a bad backend never reaches a file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from clusterpanel.errors import InputError
from pki.domain.names import is_dns1123_label, is_dns1123_subdomain

DEFAULT_LISTEN_PORT = 6443

_PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")

Backend = tuple[str, str, int]


class LoadBalancerError(InputError):
    """An invalid load-balancer setting; the message names the offending field."""


def _validate_name(value: str, field: str) -> str:
    if not isinstance(value, str) or not is_dns1123_label(value):
        raise LoadBalancerError(f"{field}: {value!r} must be a DNS label ([a-z0-9-], max 63)")
    return value


def _validate_port(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise LoadBalancerError(f"{field}: {value!r} must be a port between 1 and 65535")
    return value


def _format_address(address: str, field: str) -> str:
    """Return an IP (IPv6 bracketed) or a lowercase DNS name suitable for ``host:port``."""
    if not isinstance(address, str):
        raise LoadBalancerError(f"{field}: must be a string")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        name = address.lower()
        # An all-digit last label is a mistyped IP address (10.0.0.300), not a host name.
        numeric_tld = name.rsplit(".", 1)[-1].isdigit()
        if not is_dns1123_subdomain(name) or numeric_tld:
            raise LoadBalancerError(
                f"{field}: {address!r} is not an IP address or DNS name"
            ) from None
        return name
    if ip.is_unspecified or ip.is_multicast:
        raise LoadBalancerError(f"{field}: {address!r} cannot be a backend address")
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _validate_backends(backends: Sequence[Backend]) -> list[tuple[str, str]]:
    """Return (name, host:port) pairs; names and endpoints must be unique."""
    if not backends:
        raise LoadBalancerError("backends: at least one control-plane node is needed")
    result: list[tuple[str, str]] = []
    for index, backend in enumerate(backends):
        if not isinstance(backend, tuple | list) or len(backend) != 3:
            raise LoadBalancerError(f"backends[{index}]: must be (name, address, port)")
        name, address, port = backend
        label = f"backends[{index}]"
        _validate_name(name, f"{label}.name")
        host = _format_address(address, f"{label}.address")
        _validate_port(port, f"{label}.port")
        result.append((name, f"{host}:{port}"))
    names = [name for name, _ in result]
    endpoints = [endpoint for _, endpoint in result]
    if len(set(names)) != len(names):
        raise LoadBalancerError("backends: names must be unique")
    if len(set(endpoints)) != len(endpoints):
        raise LoadBalancerError("backends: each address:port may appear only once")
    return result


def _validate_path(value: str, field: str) -> str:
    if not isinstance(value, str) or _PATH_RE.fullmatch(value) is None:
        raise LoadBalancerError(f"{field}: {value!r} must be an absolute path of [A-Za-z0-9._/-]")
    return value


def render_nginx_stream(
    name: str,
    backends: Sequence[Backend],
    listen_port: int = DEFAULT_LISTEN_PORT,
    *,
    pid_path: str = "/run/nginx.pid",
    error_log: str = "/var/log/nginx/error.log",
    stream_module_path: str | None = None,
) -> str:
    """Return a complete nginx.conf that balances TCP ``listen_port`` over the apiservers.

    ``stream_module_path`` adds ``load_module`` for builds where the stream module is dynamic
    (Debian's libnginx-mod-stream: ``/usr/lib/nginx/modules/ngx_stream_module.so``).
    """
    _validate_name(name, "name")
    servers = _validate_backends(backends)
    _validate_port(listen_port, "listen_port")
    _validate_path(pid_path, "pid_path")
    _validate_path(error_log, "error_log")
    lines = [f"# TCP load balancer for the kube-apiservers of {name}"]
    if stream_module_path is not None:
        lines.append(f"load_module {_validate_path(stream_module_path, 'stream_module_path')};")
    lines += [
        "worker_processes auto;",
        f"pid {pid_path};",
        f"error_log {error_log} warn;",
        "",
        "events {",
        "    worker_connections 4096;",
        "}",
        "",
        "stream {",
        f"    upstream {name}_apiserver {{",
        # Spread new connections by load: watches are long-lived, round robin skews over time.
        "        least_conn;",
    ]
    lines += [
        f"        server {endpoint} max_fails=3 fail_timeout=10s;  # {node}"
        for node, endpoint in servers
    ]
    lines += [
        "    }",
        "",
        "    server {",
        f"        listen {listen_port};",
        f"        proxy_pass {name}_apiserver;",
        "        proxy_connect_timeout 2s;",
        # Long enough for idle watch connections between server-side bookmarks.
        "        proxy_timeout 10m;",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_haproxy(
    name: str,
    backends: Sequence[Backend],
    listen_port: int = DEFAULT_LISTEN_PORT,
) -> str:
    """Return a complete haproxy.cfg as the kubeadm HA guide recommends.

    TCP passthrough (the apiservers terminate TLS), round robin, and a health check that speaks
    HTTPS to ``/readyz`` without verifying the serving certificate (the balancer does not hold the
    cluster CA); a node is out after 3 failed checks 3 s apart and back after 2 good ones.
    """
    _validate_name(name, "name")
    servers = _validate_backends(backends)
    _validate_port(listen_port, "listen_port")
    lines = [
        f"# TCP load balancer for the kube-apiservers of {name}",
        "global",
        "    log stdout format raw local0",
        "    maxconn 20000",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        "    option dontlognull",
        "    retries 1",
        "    timeout connect 5s",
        # Watches stay open for minutes with little traffic; short timeouts would cut them.
        "    timeout client 20m",
        "    timeout server 20m",
        "    timeout check 10s",
        "",
        f"frontend {name}-apiserver",
        f"    bind :{listen_port}",
        "    mode tcp",
        "    option tcplog",
        f"    default_backend {name}-apiservers",
        "",
        f"backend {name}-apiservers",
        "    mode tcp",
        "    balance roundrobin",
        "    option httpchk GET /readyz",
        "    http-check expect status 200",
        # Resolve DNS names at start if possible, but start anyway when a node does not resolve.
        "    default-server init-addr last,libc,none",
    ]
    lines += [
        f"    server {node} {endpoint} check check-ssl verify none inter 3s fall 3 rise 2"
        for node, endpoint in servers
    ]
    return "\n".join(lines) + "\n"


def write_config(path: Path, text: str) -> None:
    """Write a rendered configuration atomically (readers never see half a file), mode 0644."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
