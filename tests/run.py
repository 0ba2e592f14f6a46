"""The whole test command: system packages, lint, types, import contracts, Django checks, then
pytest.

Run as ``.venv/bin/python tests/run.py`` (see README). Exits non-zero if any
step fails. Extra arguments go to pytest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

# The real parts the tests drive, and the Debian package providing each.
REQUIRED_COMMANDS = {
    "redis-server": "redis-server",
    "pg_ctl": "postgresql",
    "sshd": "openssh-server",
    "ssh-keygen": "openssh-client",
    "etcd": "etcd-server",
    "etcdctl": "etcd-client",
    "cfssl": "golang-cfssl",
    "openssl": "openssl",
    "chromium": "chromium",
    "nginx": "nginx",
    "haproxy": "haproxy",
    "kubectl": "kubernetes-client",
    "unshare": "util-linux",
    # The test hosts: their non-root users' sudo, run_local's nsenter, the remote setsid, ps.
    "sudo": "sudo",
    "nsenter": "util-linux",
    "setsid": "util-linux",
    "ps": "procps",
}
# Files that come in packages no command reveals.
REQUIRED_FILES = {
    # nginx's stream module, for the rendered control-plane load balancer config.
    "/usr/lib/nginx/modules/ngx_stream_module.so": "libnginx-mod-stream",
}
# One pytest worker per core (pytest-xdist); each brings up its own Redis, worker and live server.
PARALLEL = ["-n", str(max(1, min(4, os.cpu_count() or 1)))]
# Debian puts some daemons outside the default PATH.
EXTRA_PATHS = ["/usr/sbin", "/sbin", "/usr/lib/postgresql/15/bin"]


def _which(command: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATHS])
    return shutil.which(command, path=path)


def install_system_packages() -> None:
    missing = sorted(
        {pkg for cmd, pkg in REQUIRED_COMMANDS.items() if _which(cmd) is None}
        | {pkg for path, pkg in REQUIRED_FILES.items() if not Path(path).exists()}
    )
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"missing system packages {', '.join(missing)}: run this as root to install them")
    print(f"installing Debian packages: {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    # With recommends, as the suite is run on development machines (fonts for Chromium).
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env)


def step(title: str, command: list[str]) -> bool:
    print(f"\n== {title}: {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=ROOT).returncode == 0


def steps_together(steps: list[tuple[str, list[str]]]) -> list[bool]:
    """Independent checks at the same time (mypy alone takes most of a minute; the others wait
    on it otherwise), each one's output printed whole and in order once it has finished."""
    results = []
    with contextlib.ExitStack() as stack:
        running = []
        for title, command in steps:
            # A file, not a pipe: a step with much to say never waits for its turn to be read.
            output = stack.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
            running.append((title, command, process, output))
        for title, command, process, output in running:
            process.wait()
            print(f"\n== {title}: {' '.join(command)}", flush=True)
            output.seek(0)
            sys.stdout.buffer.write(output.read())
            sys.stdout.flush()
            results.append(process.returncode == 0)
    return results


def postgres_pass(python: str) -> bool:
    """The database-backed tests again on PostgreSQL, the production database.

    Not the browser tests (what a page shows does not depend on the database; the views behind
    them are integration-tested on both) nor the lifecycle jobs on test hosts (``lifecycle``:
    their database side is the engine's — claims, steps, log chunks, the one-mutating-job
    constraint — whose own tests run here): both take minutes and would find nothing new here.
    Nor the tests marked ``no_database``: they reach no database at all (no ``django_db`` mark,
    no database fixture — tests/conftest.py refuses the mark otherwise), so they would run
    exactly as in the SQLite pass. Nor ``above_the_database``: the sweeps whose verdict is made
    before the database is asked (who may open which route, input refused with a 400 before
    anything is written) and the soak of the embedded broker, which is the SQLite default's.
    Schema fuzzing, input limits, audit parity and the concurrency tests stay: there PostgreSQL
    differs (varchar limits, NUL bytes, row locks).
    """
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres_server

    # Not under /tmp/pytest-of-root: postgres runs as its own user and must reach the directory.
    workdir = Path(tempfile.mkdtemp(prefix="clusterpanel-pg-"))
    try:
        with postgres_server(workdir) as url:
            os.environ["DATABASE_URL"] = url
            try:
                return step(
                    "pytest on PostgreSQL",
                    [
                        python,
                        "-m",
                        "pytest",
                        *PARALLEL,
                        "-m",
                        "not lifecycle and not no_database and not above_the_database",
                        "-q",
                        "tests/integration",
                    ],
                )
            finally:
                del os.environ["DATABASE_URL"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    install_system_packages()
    os.environ["PATH"] = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", ""), *EXTRA_PATHS])
    os.environ.setdefault("CLUSTERPANEL_DATA_DIR", str(ROOT / "var" / "test"))
    python = sys.executable
    results = [
        # The settings, which mypy's Django plugin and manage.py load, need the data dir's keys.
        step("data directory", [python, "manage.py", "bootstrap_data_dir"]),
        *steps_together(
            [
                ("ruff lint", [str(VENV_BIN / "ruff"), "check", "."]),
                ("ruff format", [str(VENV_BIN / "ruff"), "format", "--check", "."]),
                ("mypy", [str(VENV_BIN / "mypy"), "clusterpanel", "nodes", "pki"]),
                ("import contracts", [str(VENV_BIN / "lint-imports")]),
                ("django check", [python, "manage.py", "check", "--fail-level", "WARNING"]),
                ("migrations", [python, "manage.py", "makemigrations", "--check", "--dry-run"]),
            ]
        ),
    ]
    # The slowest tests are named at the end: the suite has a time budget to keep.
    pytest = [python, "-m", "pytest", *PARALLEL, "--durations=15", *sys.argv[1:]]
    results.append(step("pytest", pytest))
    if not sys.argv[1:]:
        results.append(postgres_pass(python))
    failed = results.count(False)
    print(f"\n== {'all steps passed' if not failed else f'{failed} step(s) failed'}", flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
