"""Health checks: probe throughput, one API-side round over 500 nodes, dashboard queries.

- **throughput**: ``nodes.health.probes`` (``apiserver`` livez, anonymous as a round asks it;
  ``etcd_health`` with the etcd healthcheck client certificate) in a loop for a fixed time with
  one and with two threads, against local TLS servers on 127.0.0.1 whose certificates come from
  the panel's PKI (``pki.domain.kubeadm``), as tests/unit/nodes/health/test_probes.py makes them.
- **round**: the API-side checks of one round over 500 simulated control-plane nodes (livez,
  readyz and etcd health of each: 1,500 checks), in the thread pool a round uses
  (``CLUSTERPANEL_HEALTH_WORKERS``, default 16), one TLS server port per node and component;
  the wall time against the 60 s interval.
- **dashboard**: the queries of one dashboard render (``/``, a viewer logged in, Django's test
  client) with 10, 100 and 1,000 clusters of 3 nodes, each with health rows, on a throwaway
  SQLite database, counted with ``CaptureQueriesContext``.

The TLS servers run in a child process so that their Python does not share the measuring
process's interpreter lock; they share the machine's cores with it.

Run (from the repository root): ``.venv/bin/python -m bench.health [--seconds S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import multiprocessing
import os
import platform
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from nodes.health import probes
from pki.domain.kubeadm import ClusterSpec, IssuedTree, NodeSpec, issue, plan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADDRESS = "127.0.0.1"
ROUND_NODES = 500
ROUND_WORKERS = int(os.environ.get("CLUSTERPANEL_HEALTH_WORKERS", "16"))
INTERVAL = 60.0
CLUSTER_COUNTS = (10, 100, 1000)
TIMEOUT = 5.0


class _Handler(http.server.BaseHTTPRequestHandler):
    """kube-apiserver's ``/livez`` and ``/readyz``, etcd's ``/health``: small 200 answers."""

    def do_GET(self) -> None:
        body = b'{"health":"true"}' if self.path == "/health" else b"[+]ping ok\ncheck passed\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__((ADDRESS, 0), _Handler)
        self.context = context

    def get_request(self):  # type: ignore[no-untyped-def]
        # The handshake in the connection's thread, not in the accepting loop.
        sock, address = self.socket.accept()
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def finish_request(self, request, client_address):  # type: ignore[no-untyped-def]
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


def _context(
    workdir: Path, name: str, cert: bytes, key: bytes, client_ca: bytes | None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    path = workdir / f"{name}.pem"
    path.write_bytes(cert + key)
    context.load_cert_chain(path)
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca.decode())
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _serve(tree: IssuedTree, apiservers: int, etcds: int, pipe: Connection) -> None:
    """The child process: ``apiservers`` + ``etcds`` servers; their ports go up ``pipe``; runs
    until the pipe closes."""
    with tempfile.TemporaryDirectory(prefix="clusterpanel-bench-") as directory:
        workdir = Path(directory)
        api = tree.get("apiserver", "cp-1")
        etcd = tree.get("etcd/server", "cp-1")
        api_context = _context(workdir, "api", api.cert_pem, api.key_pem, None)
        etcd_context = _context(workdir, "etcd", etcd.cert_pem, etcd.key_pem,
                                tree.cas["etcd/ca"].cert_pem)  # fmt: skip
        servers = [_Server(api_context) for _ in range(apiservers)]
        servers += [_Server(etcd_context) for _ in range(etcds)]
        for server in servers:
            threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True).start()
        pipe.send([s.server_address[1] for s in servers])
        with contextlib.suppress(EOFError):
            pipe.recv()


class Servers:
    """TLS servers in a child process: ``api`` ports (no client certificate asked, as
    kube-apiserver's anonymous ``/livez``) and ``etcd`` ports (client certificate required)."""

    def __init__(self, tree: IssuedTree, apiservers: int, etcds: int) -> None:
        self.parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(tree, apiservers, etcds, child), daemon=True
        )
        self.process.start()
        ports: list[int] = self.parent.recv()
        self.api, self.etcd = ports[:apiservers], ports[apiservers:]

    def close(self) -> None:
        self.parent.send("stop")
        self.process.join(10)


def _tree() -> IssuedTree:
    return issue(plan(ClusterSpec(key_algorithm="ECDSA-P256", nodes=(NodeSpec("cp-1", ADDRESS),))))


def _identity(tree: IssuedTree) -> probes.ClientIdentity:
    issued = tree.get("etcd/healthcheck-client")
    return probes.ClientIdentity(issued.cert_pem, issued.key_pem)


def _loop(
    probe: Callable[[int], probes.ProbeResult],
    ports: list[int],
    end: float,
    counts: list[int],
    latencies: list[float],
    failed: list[str],
    index: int,
) -> None:
    """One thread of the throughput loop: probe the ports in turn until ``end``."""
    n = index
    while time.monotonic() < end:
        result = probe(ports[n % len(ports)])
        if result.status != probes.HEALTHY:
            failed.append(result.message)
        counts[index] += 1
        latencies[index] += result.latency_ms
        n += 1


def throughput(tree: IssuedTree, seconds: float) -> list[tuple[str, int, int, float, float]]:
    """(probe, threads, checks, checks/s, mean latency ms) for each probe and thread count."""
    servers = Servers(tree, 4, 4)
    ca, etcd_ca, client = tree.cas["ca"].cert_pem, tree.cas["etcd/ca"].cert_pem, _identity(tree)
    probes_by_name: dict[str, Callable[[int], probes.ProbeResult]] = {
        "apiserver livez (server-verified TLS)": lambda port: probes.apiserver(
            ADDRESS, port, "livez", ca_pem=ca, client=None, timeout=TIMEOUT
        ),
        "etcd health (mutual TLS)": lambda port: probes.etcd_health(
            ADDRESS, port, ca_pem=etcd_ca, client=client, timeout=TIMEOUT
        ),
    }
    out = []
    try:
        for name, probe in probes_by_name.items():
            ports = servers.api if name.startswith("apiserver") else servers.etcd
            probe(ports[0])  # the cached client context, made once
            for threads in (1, 2):
                counts = [0] * threads
                latencies = [0.0] * threads
                failed: list[str] = []
                end = time.monotonic() + seconds
                loop = functools.partial(_loop, probe, ports, end, counts, latencies, failed)
                started = time.monotonic()
                workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                elapsed = time.monotonic() - started
                if failed:
                    raise RuntimeError(f"{name}: {len(failed)} failed, first: {failed[0]}")
                total = sum(counts)
                out.append((name, threads, total, total / elapsed, sum(latencies) / total))
    finally:
        servers.close()
    return out


def round_500(tree: IssuedTree) -> tuple[int, float, float, int]:
    """(checks, wall seconds, slowest check ms, unhealthy) of one API-side round over 500 nodes:
    each node's livez and readyz on its own apiserver port, its etcd health on its own etcd port."""
    servers = Servers(tree, ROUND_NODES, ROUND_NODES)
    ca, etcd_ca, client = tree.cas["ca"].cert_pem, tree.cas["etcd/ca"].cert_pem, _identity(tree)
    checks: list[Callable[[], probes.ProbeResult]] = []
    for api_port, etcd_port in zip(servers.api, servers.etcd, strict=True):
        for endpoint in ("livez", "readyz"):
            checks.append(
                lambda port=api_port, endpoint=endpoint: probes.apiserver(
                    ADDRESS, port, endpoint, ca_pem=ca, client=None, timeout=TIMEOUT
                )
            )
        checks.append(
            lambda port=etcd_port: probes.etcd_health(
                ADDRESS, port, ca_pem=etcd_ca, client=client, timeout=TIMEOUT
            )
        )
    try:
        workers = max(1, min(len(checks), ROUND_WORKERS))
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health") as pool:
            results = list(pool.map(lambda check: check(), checks))
        wall = time.monotonic() - started
    finally:
        servers.close()
    unhealthy = sum(1 for r in results if r.status != probes.HEALTHY)
    return len(checks), wall, max(r.latency_ms for r in results), unhealthy


def _django(workdir: Path) -> None:
    os.environ.update(
        {
            "CLUSTERPANEL_DATA_DIR": str(workdir / "data"),
            "DJANGO_SETTINGS_MODULE": "clusterpanel.settings",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    from tests import services

    services.bootstrap_data_dir(dict(os.environ))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()


def _add_clusters(start: int, count: int) -> None:
    """``count`` more clusters of 3 control-plane nodes, each node with health rows."""
    from django.utils import timezone

    from nodes.models import Cluster, ComponentHealth, Node

    now = timezone.now()
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"bench-{i}", control_plane_endpoint="lb.example.internal:6443")
        for i in range(start, start + count)
    )
    nodes = Node.objects.bulk_create(
        Node(cluster=c, name=f"cp-{n}", address=f"10.0.0.{10 + n}", role="control-plane")
        for c in clusters
        for n in (1, 2, 3)
    )
    components = ("kube-apiserver livez", "kube-apiserver readyz", "etcd", "ssh", "kubelet")
    ComponentHealth.objects.bulk_create(
        ComponentHealth(
            cluster_id=node.cluster_id,
            node=node,
            component=component,
            target=f"{node.address}:{i}",
            status="healthy" if i else "degraded",
            latency_ms=1.0,
            checked_at=now,
            changed_at=now,
        )
        for node in nodes
        for i, component in enumerate(components)
    )


def dashboard(workdir: Path) -> list[tuple[int, int, float]]:
    """(clusters, queries, render ms) of the dashboard at each size."""
    _django(workdir)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_user

    client = Client()
    client.force_login(make_user("bench-viewer", "viewer"))
    out = []
    have = 0
    for count in CLUSTER_COUNTS:
        _add_clusters(have, count - have)
        have = count
        client.get("/")  # warm: templates, the session
        started = time.monotonic()
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/")
        elapsed = (time.monotonic() - started) * 1000
        # The dashboard is paged by name: bench-0 is on its first page at every size.
        if response.status_code != 200 or b"bench-0<" not in response.content:
            raise RuntimeError(f"dashboard with {count} clusters: HTTP {response.status_code}")
        out.append((count, len(queries), elapsed))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput row")
    args = parser.parse_args()
    began = time.monotonic()
    tree = _tree()
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}\n")
    print("| probe | threads | checks | checks/s | mean latency (ms) |")
    print("|---|---:|---:|---:|---:|")
    for name, threads, total, rate, latency in throughput(tree, args.seconds):
        print(f"| {name} | {threads} | {total} | {rate:.0f} | {latency:.1f} |")
    checks, wall, slowest, unhealthy = round_500(tree)
    print(f"\n| nodes | checks | workers | wall (s) | of the {INTERVAL:g} s interval | "
          "slowest check (ms) | not healthy |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {ROUND_NODES} | {checks} | {ROUND_WORKERS} | {wall:.2f} | "
          f"{wall / INTERVAL:.1%} | {slowest:.0f} | {unhealthy} |")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="clusterpanel-bench-") as directory:
        rows = dashboard(Path(directory))
    print("\n| clusters | queries per dashboard render | render (ms) |")
    print("|---:|---:|---:|")
    for count, queries, elapsed in rows:
        print(f"| {count} | {queries} | {elapsed:.0f} |")
    print(f"\nbench run: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
