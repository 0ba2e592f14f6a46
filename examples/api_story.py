#!/usr/bin/env python3
"""From an empty panel to a bootstrapped cluster through the REST API alone.

Standard library only; talks to ``/api/v1/`` with an API token and nothing else:

  1. create the cluster (its control-plane endpoint is the load balancer's address)
  2. add the nodes (control-plane and workers) with their SSH user, port and key
  3. scan each node's host key and approve it (only when it is the fingerprint the inventory
     expects, or with ``--trust-scanned-host-keys``)
  4. gather facts, then run preflight; a preflight check that fails stops here unless it is
     named in ``--ignore-preflight-errors`` (preflight then shows it as an ignored warning, and
     the bootstrap ignores it too)
  5. issue the PKI
  6. preview and launch the bootstrap, following its log
  7. print the worker join command
  8. with ``--etcd-backup``, take an etcd snapshot

Each step prints one line; job results and logs follow it indented. Any answer that is not 2xx
stops the script with exit code 1 and the API's error body on stderr.

Nodes come from ``--control-plane NAME=ADDRESS[:PORT]`` / ``--worker …`` (with ``--ssh-user``
and ``--ssh-key``) or from a JSON inventory (``--inventory``)::

    {"cluster": {"name": "prod", "control_plane_endpoint": "lb.example.internal:6443"},
     "ssh_user": "root", "ssh_key_file": "~/.ssh/id_ed25519",
     "nodes": [{"name": "cp-1", "address": "10.0.0.11", "role": "control-plane",
                "ssh_port": 22, "host_key_fingerprint": "SHA256:…"}, …]}

``host_key_fingerprint`` there is the fingerprint the node is known to have (``ssh-keygen -lf
/etc/ssh/ssh_host_ed25519_key.pub`` on its console): the scanned key is approved only if it is
that one. Any cluster setting of the API may appear under ``cluster``; a node may carry its own
``ssh_user``, ``ssh_key_file``, ``labels`` and ``taints``.

Example::

    CLUSTERPANEL_URL=http://127.0.0.1:8000 CLUSTERPANEL_TOKEN=cp_… \\
      examples/api_story.py --inventory prod.json --ignore-preflight-errors swap
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from panel_client import (
    PanelClient,
    UsageError,
    add_connection_arguments,
    checks_table,
    client_from,
    run,
)

# Node fields of the API an inventory entry may give.
NODE_FIELDS = ("name", "address", "role", "ssh_port", "ssh_user", "labels", "taints")


def say(line: str) -> None:
    print(line, flush=True)


def indented(lines: list[str]) -> None:
    for line in lines:
        print(f"    {line}")
    sys.stdout.flush()


def parse_node(role: str, text: str) -> dict[str, Any]:
    """``NAME=ADDRESS[:PORT]``; an IPv6 address with a port is written ``[ADDRESS]:PORT``."""
    name, sep, where = text.partition("=")
    if not sep or not name or not where:
        raise UsageError(f"--{role} wants NAME=ADDRESS[:PORT], not {text!r}")
    port: int | None = None
    if where.startswith("["):
        address, _, rest = where[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise UsageError(f"--{role} {text!r}: the port must be a number")
            port = int(rest[1:])
    elif where.count(":") == 1:
        address, _, number = where.partition(":")
        if not number.isdigit():
            raise UsageError(f"--{role} {text!r}: the port must be a number")
        port = int(number)
    else:
        address = where
    node: dict[str, Any] = {"name": name, "address": address, "role": role}
    if port is not None:
        node["ssh_port"] = port
    return node


def inventory(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The cluster's settings and the nodes (each with ``ssh_key_file`` and its expected host
    key fingerprint, if any), from the inventory file and the arguments."""
    data: dict[str, Any] = {}
    if args.inventory:
        try:
            data = json.loads(Path(args.inventory).read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"cannot read the inventory {args.inventory}: {error}") from None
        if not isinstance(data, dict):
            raise UsageError("the inventory must be a JSON object")
    cluster = dict(data.get("cluster") or {})
    for key, value in (
        ("name", args.cluster),
        ("control_plane_endpoint", args.endpoint),
        ("kubernetes_version", args.kubernetes_version),
    ):
        if value:
            cluster[key] = value
    if not cluster.get("name") or not cluster.get("control_plane_endpoint"):
        raise UsageError("name the cluster (--cluster) and its endpoint (--endpoint)")
    nodes = [dict(n) for n in data.get("nodes") or []]
    nodes += [parse_node("control-plane", t) for t in args.control_plane]
    nodes += [parse_node("worker", t) for t in args.worker]
    if not any(n.get("role") == "control-plane" for n in nodes):
        raise UsageError("the cluster needs at least one control-plane node")
    for node in nodes:
        node.setdefault("ssh_user", args.ssh_user or data.get("ssh_user") or "root")
        key_file = node.pop("ssh_key_file", None) or args.ssh_key or data.get("ssh_key_file")
        if not key_file:
            raise UsageError(f"no SSH key for node {node.get('name')}: give --ssh-key")
        node["ssh_key_file"] = str(Path(key_file).expanduser())
        unknown = set(node) - {*NODE_FIELDS, "ssh_key_file", "host_key_fingerprint"}
        if unknown:
            raise UsageError(f"node {node.get('name')}: unknown fields {sorted(unknown)}")
    return cluster, nodes


def add_nodes(panel: PanelClient, cluster_id: int, nodes: list[dict[str, Any]]) -> list[int]:
    ids = []
    for node in nodes:
        body = {k: v for k, v in node.items() if k in NODE_FIELDS}
        body["cluster"] = cluster_id
        try:
            body["ssh_private_key"] = Path(node["ssh_key_file"]).read_text()
        except OSError as error:
            raise UsageError(f"cannot read the SSH key of {node['name']}: {error}") from None
        made = panel.post("nodes/", body)
        ids.append(made["id"])
        say(
            f"node {made['name']} added: id {made['id']}, {made['role']}, "
            f"{made['ssh_user']}@{made['address']}:{made['ssh_port']}"
        )
    return ids


def pin_host_keys(
    panel: PanelClient, nodes: list[dict[str, Any]], ids: list[int], trust_scanned: bool
) -> None:
    for node, node_id in zip(nodes, ids, strict=True):
        scan = panel.post(f"nodes/{node_id}/host-key/scan/")
        scanned = scan["scanned_fingerprint"]
        expected = node.get("host_key_fingerprint")
        if expected and scanned != expected:
            raise UsageError(
                f"node {node['name']} presents {scanned}, not the expected {expected}: "
                "nothing approved"
            )
        if not expected and not trust_scanned:
            raise UsageError(
                f"node {node['name']} presents {scanned}; compare it with the node's console "
                "and put it in the inventory (host_key_fingerprint), or pass "
                "--trust-scanned-host-keys"
            )
        approved = panel.post(f"nodes/{node_id}/host-key/approve/", {"fingerprint": scanned})
        how = "as the inventory expects" if expected else "trusted as scanned"
        say(f"node {node['name']}: host key {scanned} {approved['host_key_state']} ({how})")


def run_job(
    panel: PanelClient,
    cluster_id: int,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    log: bool = False,
    timeout: float,
) -> dict[str, Any]:
    job = panel.launch(cluster_id, kind, None, params)
    say(f"{kind} job {job['id']} launched on {len(job['nodes'])} nodes")
    done = panel.follow(job["id"], sys.stdout if log else None, timeout=timeout)
    steps = f"{done['steps_done']}/{done['steps_total']} steps"
    say(f"{kind} job {done['id']} {done['status']} ({steps}): {done['explanation']}")
    return done


def step_messages(job: dict[str, Any]) -> list[str]:
    return [
        f"{s['node'] or '(panel)'}: {s['status']}: {s['message']}"
        for s in job["steps"]
        if s["message"]
    ]


def story(args: argparse.Namespace) -> int:
    cluster_fields, nodes = inventory(args)
    panel = client_from(args)
    ignored = sorted({n.strip() for n in args.ignore_preflight_errors.split(",") if n.strip()})

    cluster = panel.post("clusters/", cluster_fields)
    cluster_id = cluster["id"]
    say(
        f"cluster {cluster['name']} created: id {cluster_id}, Kubernetes "
        f"{cluster['kubernetes_version']}, endpoint {cluster['control_plane_endpoint']}"
    )
    ids = add_nodes(panel, cluster_id, nodes)
    pin_host_keys(panel, nodes, ids, args.trust_scanned_host_keys)

    facts = run_job(panel, cluster_id, "facts", timeout=args.timeout)
    indented(step_messages(facts))
    if facts["status"] != "succeeded":
        return 1

    # Preflight takes the same list as the bootstrap: what it ignores there passes here too.
    skip = {"ignore_preflight_errors": ",".join(ignored)} if ignored else {}
    preflight = run_job(panel, cluster_id, "preflight", skip, timeout=args.timeout)
    if preflight["status"] != "succeeded":
        failed = sorted({c["name"] for c in preflight["checks"] if c["status"] == "fail"})
        indented(checks_table(preflight["checks"]))
        say(f"stopping: preflight failed on {', '.join(failed) or 'no check'}")
        return 1
    skipped = sorted({c["name"] for c in preflight["checks"] if c.get("ignored")})
    if skipped:
        say(f"preflight: the failed checks are all ignored ({', '.join(skipped)})")
    indented(checks_table([c for c in preflight["checks"] if c["status"] != "pass"]))

    issued = panel.post(f"clusters/{cluster_id}/certificates/issue/")
    say(
        f"PKI issued: {len(issued['created'])} certificates created"
        + (f"; warnings: {'; '.join(issued['warnings'])}" if issued["warnings"] else "")
    )

    params: dict[str, Any] = {}
    if ignored:
        params["ignore_preflight_errors"] = ",".join(ignored)
    if args.cni_manifest:
        params["cni_manifest"] = Path(args.cni_manifest).read_text()
    launch = {"cluster": cluster_id, "kind": "bootstrap", "params": params}
    preview = panel.post("jobs/plan/", launch)
    phases = preview.get("plan", {}).get("phases", [])
    say(f"bootstrap preview: {len(phases)} phases: {', '.join(p['name'] for p in phases)}")
    bootstrap = run_job(panel, cluster_id, "bootstrap", params, log=True, timeout=args.timeout)
    if bootstrap["status"] != "succeeded":
        return 1

    join = panel.get(f"clusters/{cluster_id}/join-command/", role="worker")
    say(f"join command for a new worker (token {join['token_id']}):")
    print(join["command"], flush=True)

    if args.etcd_backup:
        backup = run_job(panel, cluster_id, "etcd-backup", timeout=args.timeout)
        if backup["status"] != "succeeded":
            return 1
        snapshots = panel.get("etcd-snapshots/", cluster=cluster_id)["results"]
        if snapshots:
            newest = snapshots[0]
            say(
                f"etcd snapshot {newest['id']}: {newest['size']} bytes, revision "
                f"{newest['revision']}, from {newest['member']}"
            )
    return 0


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Create, provision and bootstrap a cluster through the panel's REST API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_arguments(parser)
    parser.add_argument("--inventory", help="a JSON inventory (see the script's docstring)")
    parser.add_argument("--cluster", help="the cluster's name")
    parser.add_argument("--endpoint", help="the control-plane endpoint (the load balancer)")
    parser.add_argument("--kubernetes-version", help="e.g. 1.30.2 (default: the panel's)")
    parser.add_argument(
        "--control-plane", action="append", default=[], metavar="NAME=ADDRESS[:PORT]"
    )
    parser.add_argument("--worker", action="append", default=[], metavar="NAME=ADDRESS[:PORT]")
    parser.add_argument("--ssh-user", help="default root")
    parser.add_argument("--ssh-key", help="the private key file the panel logs in with")
    parser.add_argument(
        "--trust-scanned-host-keys",
        action="store_true",
        help="approve host keys the inventory gives no fingerprint for, as scanned",
    )
    parser.add_argument(
        "--ignore-preflight-errors",
        default="",
        metavar="CHECK,…",
        help="preflight checks that may fail (named one by one; never 'all')",
    )
    parser.add_argument("--cni-manifest", help="a CNI manifest file the bootstrap applies")
    parser.add_argument("--etcd-backup", action="store_true", help="end with an etcd snapshot")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds to wait for each job"
    )
    return parser


if __name__ == "__main__":
    run(lambda: story(parser().parse_args()))
