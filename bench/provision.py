"""Time the bootstrap job over 3 and 30 nodes: its preview, and its run end to end.

N nodes are 3 control-plane nodes and N - 3 workers (so 3 and 30 nodes in all), each a real sshd
test host (tests/hosts.py) with the recording stand-ins first on its PATH (tests/standins:
kubeadm, kubectl, systemctl, the package tools …): kubeadm, a kubelet and a container runtime
cannot run here, so no cluster is made, but every command and file the panel sends reaches the
host over SSH as it would on a real machine. For each size the bench makes a cluster of those
nodes in a throwaway PostgreSQL, pins their host keys, issues the PKI
(``pki.services.certificates.issue_missing``), then times:

- **preview**: ``clusterpanel.jobs.services.plan_job`` for ``bootstrap`` (what the launch page
  shows; reads no secret, connects to no host);
- **bootstrap**: ``launch_job`` until the job is terminal, run by a real Celery worker
  (``celery -A clusterpanel worker --pool solo``, its own Redis) — the worker's job record
  (started → finished) and the phases' spans are read back from the database.

The SSH commands each host received (its ``received.log``) are counted per node, split into file
writes (the executor's upload, one command per file), "is this file already identical" checks,
and the other commands; logins are counted from each sshd's log.

Run (as root, from the repository root): ``.venv/bin/python -m bench.provision [--runs N]``.
The hosts use 127.0.140.x (3 nodes) and 127.0.141.x (30 nodes); ``--block`` moves them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hosts, services, standins  # noqa: E402 - the test hosts live with the tests

SIZES = (3, 30)
CONTROL_PLANES = 3
BLOCK = 140  # 127.0.140.x for the small cluster, 127.0.141.x for the large one
CNI = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni-bench\n"
# What these hosts cannot offer a kubelet (they share this machine's kernel and have no
# container runtime): each check named, as an operator would.
IGNORED = (
    "cri-socket,cgroup-driver,ip_forward,br_netfilter,overlay,bridge-nf-call-iptables,"
    "bridge-nf-call-ip6tables,swap,cpus,memory,time,port-6443,port-2379,port-2380,port-10250,"
    "port-10257,port-10259"
)


@dataclass(frozen=True)
class Counted:
    """What one host received over SSH during one bootstrap."""

    commands: int
    writes: int
    checks: int
    logins: int


def classify(received: Sequence[str]) -> tuple[int, int, int]:
    """(file-write commands, identical-file check commands, other commands) among a host's
    received commands.

    A write is one file's atomic upload (``cat > <temp> … mv -f <temp> <path>``) or several
    files' (``upload_files``: the script on stdin of ``/bin/sh -s``); a check compares one or
    several files with ``FileWrite.identical_check`` (``sha256sum`` and ``stat`` of each path)."""
    writes = checks = 0
    for command in received:
        if (
            "clusterpanel-" in command and "mv -f" in command and "cat >" in command
        ) or "/bin/sh -s" in command:
            writes += 1
        elif "sha256sum <" in command and "stat -c" in command:
            checks += 1
    return writes, checks, len(received) - writes - checks


def phase_spans(steps: Sequence[tuple[str, float, float]]) -> dict[str, float]:
    """Per phase, the seconds from its first step's start to its last step's end, in the
    order the phases first appear; ``steps`` are (phase, started, finished) in seconds."""
    spans: dict[str, list[float]] = {}
    for phase, started, finished in steps:
        span = spans.setdefault(phase, [started, finished])
        span[0], span[1] = min(span[0], started), max(span[1], finished)
    return {phase: end - start for phase, (start, end) in spans.items()}


def roles(count: int) -> list[str]:
    """3 control-plane nodes, then workers: ``count`` nodes in all."""
    if count < CONTROL_PLANES:
        raise ValueError(f"at least {CONTROL_PLANES} nodes")
    return ["control-plane"] * CONTROL_PLANES + ["worker"] * (count - CONTROL_PLANES)


def _django(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Configure Django on a fresh data directory and database; the worker's environment."""
    env = {
        "CLUSTERPANEL_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "clusterpanel.settings",
    }
    os.environ.update(env)
    services.bootstrap_data_dir(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def _wait(job: Any, timeout: float = 600.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_terminal:
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job.pk} did not end within {timeout:.0f}s")


def run_size(
    count: int,
    number: int,
    started: Sequence[hosts.TestHost],
    key: str,
    admin: Any,
    profile: bool = False,
) -> dict[str, Any]:
    """One bootstrap of ``count`` nodes on ``started``: timings and what the hosts received."""
    from clusterpanel.jobs.services import launch_job, plan_job
    from pki.services import certificates
    from tests.actors import SETUP
    from tests.factories import make_cluster, make_node

    cluster = make_cluster(f"bench-{count}-{number}")
    for host, role in zip(started, roles(count), strict=True):
        standins.install_standins(host)
        node = make_node(cluster, role, host.name, host.address, ssh_private_key=key)
        node.pin_host_key(host.host_key_type, host.host_key_base64, None)
        node.save()
    certificates.issue_missing(cluster, actor=SETUP)
    params = {"cni_manifest": CNI, "ignore_preflight_errors": IGNORED}

    began = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        preview = profiler.runcall(plan_job, admin, cluster, "bootstrap", None, params)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    else:
        preview = plan_job(admin, cluster, "bootstrap", None, params)
    preview_s = time.perf_counter() - began
    planned = sum(len(phase["steps"]) for phase in preview["plan"]["phases"])

    began = time.perf_counter()
    job = launch_job(admin, cluster, "bootstrap", None, params)
    launch_s = time.perf_counter() - began
    job = _wait(job)
    wall = time.perf_counter() - began
    if job.status != "succeeded":
        raise RuntimeError(f"bootstrap of {count} nodes {job.status}: {job.explanation}")
    origin = job.started_at
    steps = [
        (s.phase, (s.started_at - origin).total_seconds(),
         (s.finished_at - origin).total_seconds())
        for s in job.steps.order_by("pk")
        if s.started_at and s.finished_at
    ]  # fmt: skip
    spans = phase_spans(steps)
    first, last = min(s[1] for s in steps), max(s[2] for s in steps)
    counted = {}
    for host in started:
        writes, checks, _ = classify(host.received_commands())
        counted[host.name] = Counted(
            len(host.received_commands()), writes, checks, host.accepted_logins()
        )
    return {
        "nodes": count,
        "preview": preview_s,
        "planned_steps": planned,
        "wall": wall,
        "launch": launch_s,
        "worker": (job.finished_at - job.started_at).total_seconds(),
        "worker_plan": first,  # the worker's run until its first step started
        "worker_steps": last - first,
        "spans": spans,
        "counted": counted,
        "roles": dict(zip((h.name for h in started), roles(count), strict=True)),
    }


def per_role(row: Mapping[str, Any], init: str) -> dict[str, Counted]:
    """Median counts for the init node, the other control-plane nodes and the workers."""
    groups: dict[str, list[Counted]] = {"init node": [], "other control plane": [], "worker": []}
    for name, counted in row["counted"].items():
        if name == init:
            groups["init node"].append(counted)
        elif row["roles"][name] == "control-plane":
            groups["other control plane"].append(counted)
        else:
            groups["worker"].append(counted)
    return {
        group: Counted(*(int(statistics.median(getattr(c, f) for c in found))
                         for f in ("commands", "writes", "checks", "logins")))
        for group, found in groups.items() if found
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--block", type=int, default=BLOCK)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each preview (to stderr; slower)"
    )
    args = parser.parse_args(argv)
    if args.runs * max(args.sizes) > 254:
        parser.error("too many runs for one address block")
    with tempfile.TemporaryDirectory(prefix="clusterpanel-bench-provision-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        with (
            services.postgres_server(workdir / "pg") as database_url,
            services.redis_server(_redis_dir(workdir)) as redis_url,
        ):
            env = _django(workdir, database_url, redis_url)
            from clusterpanel.security.audit import Actor
            from tests.factories import make_user

            admin = Actor.for_command(make_user("bench-admin", "admin"))
            private, public = hosts.client_key(workdir / "keys", "bench")
            log = workdir / "worker.log"
            rows: dict[int, list[dict[str, Any]]] = {size: [] for size in args.sizes}
            with services.celery_worker(env, "bench", log):
                for run in range(args.runs):
                    for offset, size in enumerate(args.sizes):
                        specs = [hosts.HostSpec(f"bench-{size}-{i}") for i in range(1, size + 1)]
                        # Fresh addresses for every run: a stopped host's sockets may linger.
                        with hosts.start_hosts(
                            specs, workdir / "hosts", args.block + offset,
                            client_public_key=public, first=1 + run * size,
                        ) as started:  # fmt: skip
                            rows[size].append(
                                run_size(size, run, started, private, admin, args.profile)
                            )
                        print(f"run {run + 1}: {size} nodes {rows[size][-1]['wall']:.1f}s",
                              file=sys.stderr)  # fmt: skip
    report(rows, args.runs)


def _redis_dir(workdir: Path) -> Path:
    path = workdir / "redis"
    path.mkdir()
    return path


def report(rows: Mapping[int, Sequence[dict[str, Any]]], runs: int) -> None:
    import paramiko
    from django.db import connection

    med = statistics.median
    print(f"# bootstrap, median of {runs} run(s); Python {platform.python_version()}, "
          f"paramiko {paramiko.__version__}, PostgreSQL {connection.pg_version}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| nodes (cp + workers) | preview (s) | bootstrap, launch → done (s) | per node (s) "
          "| of which: launch_job | worker's plan | worker's steps "
          "| SSH commands per node | logins per node |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    figures = ("preview", "wall", "launch", "worker_plan", "worker_steps")
    summary: dict[int, dict[str, float]] = {}
    for size, found in rows.items():
        summary[size] = {name: med(r[name] for r in found) for name in figures}
        commands = med(sum(c.commands for c in r["counted"].values()) / size for r in found)
        logins = med(sum(c.logins for c in r["counted"].values()) / size for r in found)
        row = summary[size]
        print(f"| {size} ({CONTROL_PLANES} + {size - CONTROL_PLANES}) | {row['preview']:.2f} "
              f"| {row['wall']:.1f} | {row['wall'] / size:.2f} | {row['launch']:.1f} "
              f"| {row['worker_plan']:.1f} | {row['worker_steps']:.1f} | {commands:.1f} "
              f"| {logins:.1f} |")  # fmt: skip
    small, large = min(rows), max(rows)
    print(f"\n{large} nodes vs {small} ({large / small:.0f}x the nodes):")
    for name in figures:
        ratio = summary[large][name] / max(summary[small][name], 1e-9)
        print(f"- {name}: {ratio:.2f}x")
    for size, found in rows.items():
        last = found[-1]
        init = next(name for name, role in last["roles"].items() if role == "control-plane")
        print(f"\n## {size} nodes: SSH commands per node (last run), "
              f"{last['planned_steps']} planned steps")  # fmt: skip
        print("| node | commands | file writes | identical-file checks | other | logins |")
        print("|---|---:|---:|---:|---:|---:|")
        for group, c in per_role(last, init).items():
            print(f"| {group} | {c.commands} | {c.writes} | {c.checks} | "
                  f"{c.commands - c.writes - c.checks} | {c.logins} |")  # fmt: skip
        print(f"\n## {size} nodes: phases (median seconds)")
        print("| phase | s |")
        print("|---|---:|")
        for phase in last["spans"]:
            print(f"| {phase} | {med(r['spans'].get(phase, 0.0) for r in found):.2f} |")


if __name__ == "__main__":
    main()
