#!/usr/bin/env python3
"""What operators script most, over the panel's REST API (standard library only).

    clusterpanel_cli.py join-command CLUSTER [--control-plane] [--new-token] [--one-line]
    clusterpanel_cli.py expiring [--within-days N]
    clusterpanel_cli.py job run CLUSTER KIND [--node NODE ...] [--param K=V ...] [--follow]

CLUSTER and NODE are names or ids. The panel's URL and an API token come from ``--url`` /
``--token`` or ``CLUSTERPANEL_URL`` / ``CLUSTERPANEL_TOKEN``. Exit codes: 0 done (for
``job run --follow``: the job succeeded), 1 the API refused (its error body on stderr) or the job
did not succeed, 2 a wrong argument.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from panel_client import (
    ApiError,
    PanelClient,
    UsageError,
    add_connection_arguments,
    checks_table,
    client_from,
    run,
    table,
)


def join_command(panel: PanelClient, args: argparse.Namespace) -> int:
    """The ``kubeadm join`` line as kubeadm prints it. A control-plane command needs a
    certificate key with time left: when the panel says there is none, one is made."""
    cluster = panel.cluster(args.cluster)
    role = "control-plane" if args.control_plane else "worker"
    path = f"clusters/{cluster['id']}/join-command/"
    query = {"role": role, "new_token": 1 if args.new_token else None}
    try:
        join = panel.get(path, **query)
    except ApiError as error:
        # 409: no certificate key with time left (or no usable token: then it stays a 409).
        if not (args.control_plane and error.status == 409):
            raise
        panel.post(f"clusters/{cluster['id']}/certificate-key/")
        join = panel.get(path, **query)
    print(join["one_line"] if args.one_line else join["command"])
    return 0


def expiring(panel: PanelClient, args: argparse.Namespace) -> int:
    """The fleet's certificates, soonest NotAfter first, as an aligned table."""
    rows = list(panel.pages("certificates/fleet/", expiring_within_days=args.within_days))
    rows.sort(key=lambda r: r["not_after"])  # ISO 8601 in UTC: text order is time order
    lines = table(
        ["DAYS", "BAND", "NOT AFTER", "CLUSTER", "NODE", "SOURCE", "PATH", "SUBJECT"],
        [
            [
                r["days_left"],
                r["band"],
                r["not_after"],
                r["cluster_name"],
                r["node_name"] or "-",
                r["source"],
                r["path"],
                r["subject"],
            ]
            for r in rows
        ],
    )
    print("\n".join(lines))
    within = f" within {args.within_days} days" if args.within_days is not None else ""
    print(f"{len(rows)} certificates{within}", file=sys.stderr)
    return 0


def parse_params(pairs: list[str], json_pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param wants KEY=VALUE, not {pair!r}")
        params[key] = value
    for pair in json_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param-json wants KEY=JSON, not {pair!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            raise UsageError(f"--param-json {key}: {value!r} is not JSON") from None
    return params


def job_run(panel: PanelClient, args: argparse.Namespace) -> int:
    """Launch a job; with ``--follow`` print its log until it ends, then its outcome."""
    cluster = panel.cluster(args.cluster)
    node_ids = panel.node_ids(cluster["id"], args.node) if args.node else None
    params = parse_params(args.param, args.param_json)
    job = panel.launch(cluster["id"], args.kind, node_ids, params)
    print(f"job {job['id']} ({job['kind']}) launched on {len(job['nodes'])} nodes", flush=True)
    if not args.follow:
        return 0
    done = panel.follow(job["id"], sys.stdout, timeout=args.timeout)
    if done["checks"]:
        print("\n".join(checks_table(done["checks"])))
    print(f"job {done['id']} {done['status']}: {done['explanation']}", flush=True)
    return 0 if done["status"] == "succeeded" else 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="clusterpanel from the command line.")
    add_connection_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    join = commands.add_parser("join-command", help="print a cluster's kubeadm join command")
    join.add_argument("cluster", help="name or id")
    join.add_argument("--control-plane", action="store_true", help="for a control-plane node")
    join.add_argument("--new-token", action="store_true", help="on a fresh bootstrap token")
    join.add_argument("--one-line", action="store_true", help="without line continuations")
    join.set_defaults(handler=join_command)

    soon = commands.add_parser("expiring", help="the fleet's certificates, soonest first")
    soon.add_argument("--within-days", type=int, metavar="N", help="only those expiring within N")
    soon.set_defaults(handler=expiring)

    job = commands.add_parser("job", help="jobs").add_subparsers(dest="job_command", required=True)
    launch = job.add_parser("run", help="launch a job")
    launch.add_argument("cluster", help="name or id")
    launch.add_argument("kind", help="facts, preflight, install, bootstrap, join, etcd-backup, …")
    launch.add_argument(
        "--node", action="append", default=[], help="name or id (repeat; default: all)"
    )
    launch.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    launch.add_argument(
        "--param-json", action="append", default=[], metavar="KEY=JSON", help="a typed value"
    )
    launch.add_argument("--follow", action="store_true", help="follow the log until it ends")
    launch.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow")
    launch.set_defaults(handler=job_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.handler(client_from(args), args)
    return code


if __name__ == "__main__":
    run(main)
