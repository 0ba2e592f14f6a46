"""Time facts + preflight over 1, 10 and 30 hosts: the panel's engine against ansible ad-hoc.

The hosts are the test suite's real sshd hosts (tests/hosts.py: one sshd per loopback address,
each in its own mount and UTS namespace), started once for the whole run. Both sides run the
same shell scripts (the facts script, then the preflight probe) as root over SSH, with host
keys checked against the same pinned keys:

- **panel**: ``nodes.executor.execute`` with the facts plan, then the preflight plan, each
  fanned out over every host at once (``max_parallel`` = hosts), one SSH connection per host
  per job, output streamed to an in-memory reporter — what a worker does minus the database.
- **ansible**: ``ansible all -m shell -a <script> -f <hosts>`` for each script (forks = hosts),
  ssh with a known_hosts file and ``StrictHostKeyChecking=yes``, ansible-core from PyPI in its
  own virtualenv (``bench/.venv-ansible``, made on the first run).

Run (as root, from the repository root): ``.venv/bin/python -m bench.fanout [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nodes import executor, ssh
from nodes.recipes import facts, preflight
from nodes.recipes.plan import ClusterSpec, NodeTarget, Outcome, Plan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hosts  # noqa: E402 - the test hosts live with the tests

COUNTS = (1, 10, 30)
BLOCK = 230  # 127.0.230.x: apart from the test suite's blocks
ANSIBLE_VENV = ROOT / "bench" / ".venv-ansible"
CLUSTER = ClusterSpec("bench", "v1.31.2", "10.244.0.0/16", "10.96.0.0/12", "containerd")


class _Handle:
    def __init__(self) -> None:
        self.bytes = 0

    def output(self, stream: str, data: bytes) -> None:
        self.bytes += len(data)

    def finish(self, outcome: Outcome, exit_code: int | None) -> None:
        self.outcome = outcome


class MemoryReporter:
    """The executor's reporter, keeping only what the bench checks."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.handles: list[_Handle] = []

    def planned(self, plan: Plan) -> None:
        pass

    def previous(self, phase: str, step: str, node: str | None) -> Outcome | None:
        return None

    def start_step(self, phase: str, step: str, node: str | None) -> _Handle:
        handle = _Handle()
        self.handles.append(handle)
        return handle

    def skip_step(self, phase: str, step: str, node: str | None, reason: str) -> None:
        raise RuntimeError(f"{step} on {node} skipped: {reason}")


def panel_run(targets: Sequence[ssh.Target]) -> float:
    nodes = [NodeTarget(t.name, t.address, "control-plane") for t in targets]
    by_name = {t.name: t for t in targets}
    started = time.perf_counter()
    for recipe in (facts, preflight):
        plan = recipe.plan(CLUSTER, nodes, {})
        result = executor.execute(plan, by_name, MemoryReporter(), max_parallel=len(targets))
        # Preflight may fail its verdict on this machine (swap, modules): every probe ran.
        if result.status == "cancelled" or any(
            o.status != "succeeded" for (_, _, node), o in result.outcomes.items() if node
        ):
            raise RuntimeError(f"{recipe.KIND}: {result.explanation}")
    return time.perf_counter() - started


def local_floor(count: int) -> float:
    """Both scripts run ``count`` times at once on this machine, without SSH: the CPU the hosts'
    side needs. The test hosts share this machine's cores, so no engine can beat this figure;
    on a real fleet each host brings its own CPU."""
    started = time.perf_counter()
    for script in (facts.FACTS_SCRIPT, preflight.PROBE_SCRIPT):
        running = [
            subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL) for _ in range(count)
        ]
        for process in running:
            process.wait()
    return time.perf_counter() - started


def ensure_ansible() -> Path:
    ansible = ANSIBLE_VENV / "bin" / "ansible"
    if not ansible.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True)
        subprocess.run([str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"],
                       check=True)  # fmt: skip
    return ansible


def ansible_run(
    ansible: Path, workdir: Path, started: Sequence[hosts.TestHost], key: Path
) -> float:
    inventory = workdir / f"inventory-{len(started)}.ini"
    inventory.write_text(
        "[all]\n" + "".join(f"{h.name} ansible_host={h.address}\n" for h in started)
    )
    known = workdir / "known_hosts"
    known.write_text(
        "".join(f"{h.address} {h.host_key_type} {h.host_key_base64}\n" for h in started)
    )
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
        "-o ControlMaster=auto -o ControlPersist=60s",
        "ANSIBLE_PRIVATE_KEY_FILE": str(key),
        "ANSIBLE_REMOTE_USER": "root",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(workdir / "cp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    began = time.perf_counter()
    for script in (facts.FACTS_SCRIPT, preflight.PROBE_SCRIPT):
        done = subprocess.run(
            [str(ansible), "all", "-i", str(inventory), "-m", "shell", "-a", script,
             "-f", str(len(started)), "-o"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"ansible failed ({done.returncode}):\n{done.stdout[-2000:]}")
    return time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    ansible = ensure_ansible()
    with tempfile.TemporaryDirectory(prefix="clusterpanel-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        private, public = hosts.client_key(workdir / "keys", "bench")
        key_file = workdir / "client_key"
        key_file.write_text(private)
        key_file.chmod(0o600)
        credential = ssh.Credential(user="root", private_key=private)
        specs = [hosts.HostSpec(f"bench-{i}") for i in range(1, max(COUNTS) + 1)]
        with hosts.start_hosts(
            specs, workdir / "hosts", BLOCK, client_public_key=public
        ) as started:
            rows: list[dict[str, Any]] = []
            for count in COUNTS:
                chosen = started[:count]
                targets = [h.target(credential) for h in chosen]
                panel = [panel_run(targets) for _ in range(args.runs)]
                other = [ansible_run(ansible, workdir, chosen, key_file) for _ in range(args.runs)]
                floor = [local_floor(count) for _ in range(args.runs)]
                rows.append({"hosts": count, "panel": statistics.median(panel),
                             "ansible": statistics.median(other),
                             "floor": statistics.median(floor)})  # fmt: skip
    print(f"# facts + preflight, median of {args.runs} runs; {platform.python_version()}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(
        "| hosts | panel (s) | ansible ad-hoc (s) | ansible / panel | scripts alone, no SSH (s) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = row["ansible"] / row["panel"]
        print(f"| {row['hosts']} | {row['panel']:.2f} | {row['ansible']:.2f} | {ratio:.1f}x "
              f"| {row['floor']:.2f} |")  # fmt: skip
    one = rows[0]["panel"]
    print(
        f"\npanel: {rows[-1]['hosts']} hosts take {rows[-1]['panel'] / one:.2f}x the time of 1 host"
    )


if __name__ == "__main__":
    main()
