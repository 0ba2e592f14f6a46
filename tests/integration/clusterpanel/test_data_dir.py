"""Loading the settings writes nothing; ``manage.py bootstrap_data_dir`` makes the data directory.

Each test runs the real commands in fresh processes on a fresh directory.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from clusterpanel.security import crypto

ROOT = Path(__file__).resolve().parents[3]
# What the developer's or CI's environment may set that would change what the data dir holds.
PANEL_VARIABLES = re.compile(r"^(CLUSTERPANEL_|DATABASE_URL$|REDIS_URL$|DJANGO_)")


def _env(data: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not PANEL_VARIABLES.match(k)}
    return {**clean, "CLUSTERPANEL_DATA_DIR": str(data), **extra}


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mode, size and modification time."""
    if not root.exists():
        return {}
    entries = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        entries[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return entries


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


IMPORT_SETTINGS = "import clusterpanel.settings as s; print(len(s.SECRET_KEY) > 40)"


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "no-dir"])
def test_settings_on_a_fresh_data_dir_write_nothing_and_say_what_to_run(
    tmp_path: Path, exists: bool
) -> None:
    data = tmp_path / "data"
    if exists:
        data.mkdir()
    result = _python(_env(data), "-c", IMPORT_SETTINGS)
    assert result.returncode != 0
    assert "python manage.py bootstrap_data_dir" in result.stderr
    assert f"{data / 'secret_key'} does not exist" in result.stderr
    assert (list(data.iterdir()) == []) if exists else not data.exists()


def test_bootstrap_makes_a_private_data_dir_that_the_settings_then_only_read(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = _env(data)
    made = _python(env, "manage.py", "bootstrap_data_dir")
    assert made.returncode == 0, made.stderr
    assert _mode(data) == 0o700
    for name in ("secret_key", "encryption.keys", "clusterpanel.sqlite3"):
        assert _mode(data / name) == 0o600, name
    for folder in ("queue", "control", "unacked", "quarantine"):
        assert _mode(data / "broker" / folder) == 0o700, folder
    # The key file exists from the start, so the first backup holds it; the output says so.
    ring = crypto.parse_keys((data / "encryption.keys").read_text())
    assert len(ring.keys) == 1
    assert f"Created {data / 'encryption.keys'} (mode 0600)" in made.stdout
    assert "Back it up together with the database" in made.stdout

    before = _tree(data)
    for args in (["-c", IMPORT_SETTINGS], ["manage.py", "check"]):
        result = _python(env, *args)
        assert result.returncode == 0, result.stderr
    assert _tree(data) == before

    again = _python(env, "manage.py", "bootstrap_data_dir")
    assert again.returncode == 0
    assert "nothing to create" in again.stdout
    assert _tree(data) == before


def test_the_database_stays_private_after_migrations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    assert _python(env, "manage.py", "bootstrap_data_dir").returncode == 0
    migrated = _python(env, "manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    database = data / "clusterpanel.sqlite3"
    assert database.stat().st_size > 0
    # SQLite gives its write-ahead log and index the database file's mode.
    for path in [database, *data.glob("clusterpanel.sqlite3-*")]:
        assert _mode(path) == 0o600, path


def test_bootstrap_warns_about_a_key_file_others_can_read_and_leaves_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data)
    assert _python(env, "manage.py", "bootstrap_data_dir").returncode == 0
    (data / "secret_key").chmod(0o644)
    again = _python(env, "manage.py", "bootstrap_data_dir")
    assert again.returncode == 0
    assert f"chmod 600 {data / 'secret_key'}" in again.stderr
    assert _mode(data / "secret_key") == 0o644


def test_with_every_setting_in_the_environment_no_data_dir_is_needed(tmp_path: Path) -> None:
    """The compose deployment: keys, PostgreSQL and Redis all come from the environment."""
    data = tmp_path / "data"
    env = _env(
        data,
        CLUSTERPANEL_SECRET_KEY="k" * 60,
        CLUSTERPANEL_ENCRYPTION_KEYS=crypto.new_key(),
        DATABASE_URL="postgres://panel:pw@db.invalid:5432/panel",
        REDIS_URL="redis://redis.invalid:6379/0",
    )
    result = _python(env, "-c", IMPORT_SETTINGS)
    assert result.returncode == 0, result.stderr
    assert not data.exists()
    # And bootstrap_data_dir (the compose migrate service runs it) makes only the directory.
    made = _python(env, "manage.py", "bootstrap_data_dir")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in data.iterdir()) == ["static"]


def test_the_image_build_step_loads_the_settings_without_a_data_dir_to_write(
    tmp_path: Path,
) -> None:
    """The Dockerfile's collectstatic step, with its own variables, on an empty directory."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    run = re.search(r"^RUN (.*?)python manage\.py collectstatic", dockerfile, re.M)
    assert run is not None
    assignments = dict(word.split("=", 1) for word in shlex.split(run.group(1)))
    data = tmp_path / "data"
    data.mkdir()
    env = _env(data, **assignments, CLUSTERPANEL_STATIC_ROOT=str(tmp_path / "static"))
    result = _python(env, "manage.py", "check")
    assert result.returncode == 0, result.stderr
    assert list(data.iterdir()) == []


def test_bootstraps_started_together_keep_one_key(tmp_path: Path) -> None:
    """serve, the compose migrate service or parallel test runs may start at the same moment."""
    data = tmp_path / "data"
    runs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "bootstrap_data_dir"],
            cwd=ROOT,
            env=_env(data),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    made = [out for out, _ in outputs if f"Created {data / 'encryption.keys'}" in out]
    assert len(made) == 1
    assert len(crypto.parse_keys((data / "encryption.keys").read_text()).keys) == 1
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".")) == []
