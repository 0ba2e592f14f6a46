"""Load-balancer configs are checked by the real nginx and haproxy binaries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pki.domain.loadbalancer import (
    LoadBalancerError,
    render_haproxy,
    render_nginx_stream,
    write_config,
)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# Debian builds the stream module as a separate package (libnginx-mod-stream).
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

BACKENDS = [
    ("cp1", "10.0.0.11", 6443),
    ("cp2", "10.0.0.12", 6443),
    ("cp3", "fd00:10::13", 6443),
    ("cp4", "localhost", 16443),
]


def _stream_module_missing() -> bool:
    """True when this nginx builds stream as a dynamic module and the module is not installed."""
    if not Path(NGINX).exists():
        return False
    build = subprocess.run([NGINX, "-V"], capture_output=True, text=True, check=False).stderr
    return "--with-stream=dynamic" in build and not STREAM_MODULE.exists()


needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
needs_nginx_stream = pytest.mark.skipif(
    _stream_module_missing(), reason="nginx stream module missing: install libnginx-mod-stream"
)
needs_haproxy = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")


def nginx_config(tmp_path: Path, backends: list[tuple[str, str, int]] = BACKENDS) -> Path:
    text = render_nginx_stream(
        "prod",
        backends,
        pid_path=str(tmp_path / "nginx.pid"),
        error_log=str(tmp_path / "error.log"),
        stream_module_path=str(STREAM_MODULE) if STREAM_MODULE.exists() else None,
    )
    path = tmp_path / "nginx.conf"
    write_config(path, text)
    return path


def nginx_test(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def haproxy_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False
    )


@needs_nginx
@needs_nginx_stream
def test_nginx_accepts_rendered_config(tmp_path: Path) -> None:
    config = nginx_config(tmp_path)
    result = nginx_test(tmp_path, config)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
@needs_nginx_stream
def test_nginx_check_catches_a_broken_config(tmp_path: Path) -> None:
    # The check above is only worth something if nginx -t fails on a broken stream block.
    config = nginx_config(tmp_path)
    config.write_text(config.read_text().replace("max_fails=3", "max_fails=three"))
    result = nginx_test(tmp_path, config)
    assert result.returncode != 0
    assert "max_fails" in result.stderr


def test_nginx_config_content() -> None:
    text = render_nginx_stream("prod", BACKENDS, listen_port=7443)
    assert text.startswith("# TCP load balancer for the kube-apiservers of prod\n")
    assert "events {\n" in text
    assert "stream {\n    upstream prod_apiserver {\n" in text
    assert "        server 10.0.0.11:6443 max_fails=3 fail_timeout=10s;  # cp1\n" in text
    assert "        server [fd00:10::13]:6443 max_fails=3 fail_timeout=10s;  # cp3\n" in text
    assert "        listen 7443;\n        proxy_pass prod_apiserver;\n" in text
    assert "proxy_connect_timeout" in text
    assert "proxy_timeout" in text
    assert "load_module" not in text


@needs_haproxy
def test_haproxy_accepts_rendered_config(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    write_config(config, render_haproxy("prod", BACKENDS))
    result = haproxy_check(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


@needs_haproxy
def test_haproxy_check_catches_a_broken_config(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    write_config(config, render_haproxy("prod", BACKENDS).replace("roundrobin", "roundrobinx"))
    assert haproxy_check(config).returncode != 0


def test_haproxy_config_content() -> None:
    text = render_haproxy("prod", BACKENDS)
    assert "frontend prod-apiserver\n    bind :6443\n    mode tcp\n" in text
    assert "    balance roundrobin\n" in text
    assert "    option httpchk GET /readyz\n    http-check expect status 200\n" in text
    for name, address, port in BACKENDS:
        host = f"[{address}]" if ":" in address else address
        assert (
            f"    server {name} {host}:{port} check check-ssl verify none inter 3s fall 3 rise 2\n"
            in text
        )
    assert text.count("    server ") == len(BACKENDS)


@pytest.mark.parametrize(
    ("backends", "field"),
    [
        ([("cp1", "10.0.0.300", 6443)], r"backends\[0\]\.address"),
        ([("cp1", "10.0.0.1; evil", 6443)], r"backends\[0\]\.address"),
        ([("cp1", "10.0.0.1\nserver x", 6443)], r"backends\[0\]\.address"),
        ([("cp1", "0.0.0.0", 6443)], r"backends\[0\]\.address"),
        ([("cp1", "10.0.0.1", 0)], r"backends\[0\]\.port"),
        ([("cp1", "10.0.0.1", 70000)], r"backends\[0\]\.port"),
        ([("CP 1", "10.0.0.1", 6443)], r"backends\[0\]\.name"),
        ([("cp1", "10.0.0.1", 6443), ("cp1", "10.0.0.2", 6443)], "names must be unique"),
        ([("cp1", "10.0.0.1", 6443), ("cp2", "10.0.0.1", 6443)], "only once"),
        ([], "at least one"),
    ],
)
def test_bad_backends_are_rejected_before_anything_is_written(
    tmp_path: Path, backends: list[tuple[str, str, int]], field: str
) -> None:
    for render in (render_nginx_stream, render_haproxy):
        target = tmp_path / f"{render.__name__}.conf"
        with pytest.raises(LoadBalancerError, match=field):
            write_config(target, render("prod", backends))
        assert not target.exists()
        assert list(tmp_path.iterdir()) == []


def test_bad_name_and_paths_are_rejected() -> None:
    with pytest.raises(LoadBalancerError, match="name"):
        render_haproxy("prod;", BACKENDS)
    with pytest.raises(LoadBalancerError, match="listen_port"):
        render_nginx_stream("prod", BACKENDS, listen_port=0)
    with pytest.raises(LoadBalancerError, match="pid_path"):
        render_nginx_stream("prod", BACKENDS, pid_path="run/nginx.pid; user root")


def test_write_config_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "haproxy.cfg"
    target.write_text("old")
    write_config(target, "new\n")
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [path.name for path in tmp_path.iterdir()] == ["haproxy.cfg"]
