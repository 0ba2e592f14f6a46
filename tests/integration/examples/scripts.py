"""Running the scripts of examples/ as an automation engineer would: a separate process that
knows only the panel's URL and an API token."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests import hosts, standins

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run_script(
    script: str, args: list[str], url: str, token: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The script under the Python running the tests with only the standard library: ``-S``
    leaves site-packages (Django, requests, …) off its path, ``-E`` ignores PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env.update(CLUSTERPANEL_URL=url, CLUSTERPANEL_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-E", "-S", str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=EXAMPLES,
        check=False,
    )


def fresh_host(host: hosts.TestHost) -> None:
    """The host as a freshly installed machine: an empty /etc/kubernetes, kubeadm and kubectl
    stand-ins without recorded calls or state (other tests share these hosts)."""
    root = host.bind_dir("/etc/kubernetes")
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    standins.clear_calls(host)
    shutil.rmtree(standins.state(host), ignore_errors=True)
    for tool in ("kubeadm", "kubectl"):
        standins.stop_failing(host, tool)
    standins.install_standins(host, ["kubeadm", "kubectl"])
