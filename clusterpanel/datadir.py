"""The data directory, and the one explicit step that creates what goes in it.

Importing the settings writes nothing. ``bootstrap()`` — ``manage.py bootstrap_data_dir``, which
``manage.py serve`` runs first — creates what the settings in force need and the environment
does not provide, and never changes a file that exists:

- the data directory itself (mode 0700);
- ``secret_key`` (0600), Django's secret key, unless ``CLUSTERPANEL_SECRET_KEY`` is set;
- ``encryption.keys`` (0600), the key that encrypts stored secrets, unless
  ``CLUSTERPANEL_ENCRYPTION_KEYS`` is set: made at installation, so that a backup taken right
  away already holds it;
- the SQLite database file (0600, empty until ``migrate``), unless ``DATABASE_URL`` is set;
- the filesystem broker's folders, unless ``REDIS_URL`` is set;
- the static root.

The settings call ``require()`` instead, which only looks and names the command to run when
something is missing. This module reads the environment the way the settings do and does not
need Django to be set up.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from clusterpanel.env import env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
ENCRYPTION_KEYS_FILE = "encryption.keys"
DATABASE_FILE = "clusterpanel.sqlite3"
BEAT_SCHEDULE_FILE = "celerybeat-schedule"
BROKER_DIR = "broker"
BROKER_FOLDERS = ("queue", "control", "unacked", "quarantine")

HOW_TO_FIX = (
    "Run `python manage.py bootstrap_data_dir` to create what is missing (`python manage.py "
    "serve` does that first), or provide the keys through the environment (see .env.example)."
)


def data_dir() -> Path:
    return Path(env_str("CLUSTERPANEL_DATA_DIR", str(BASE_DIR / "var"))).resolve()


@dataclass(frozen=True)
class Needs:
    """What the environment leaves to the data directory."""

    data: Path
    secret_key: bool
    encryption_keys: bool
    database: bool
    broker: bool
    static_root: Path

    @property
    def secret_key_file(self) -> Path:
        return self.data / SECRET_KEY_FILE

    @property
    def encryption_keys_file(self) -> Path:
        return self.data / ENCRYPTION_KEYS_FILE

    @property
    def database_file(self) -> Path:
        return self.data / DATABASE_FILE

    @property
    def broker_dir(self) -> Path:
        return self.data / BROKER_DIR


def needs() -> Needs:
    data = data_dir()
    return Needs(
        data=data,
        secret_key=not env_secret("CLUSTERPANEL_SECRET_KEY"),
        encryption_keys=not env_secret("CLUSTERPANEL_ENCRYPTION_KEYS"),
        database=not env_str("DATABASE_URL"),
        broker=not env_str("REDIS_URL"),
        static_root=Path(env_str("CLUSTERPANEL_STATIC_ROOT", str(data / "static"))),
    )


def require(what: Needs) -> None:
    """Raise ImproperlyConfigured naming everything the settings need that is not there."""
    missing = []
    if (what.database or what.broker) and not what.data.is_dir():
        missing.append(f"the data directory {what.data} does not exist")
    if what.secret_key and not what.secret_key_file.is_file():
        missing.append(f"no secret key: CLUSTERPANEL_SECRET_KEY is unset and {what.secret_key_file}"
                       " does not exist")  # fmt: skip
    if what.encryption_keys and not what.encryption_keys_file.is_file():
        missing.append(f"no encryption key: CLUSTERPANEL_ENCRYPTION_KEYS is unset and "
                       f"{what.encryption_keys_file} does not exist")  # fmt: skip
    if missing:
        raise ImproperlyConfigured(
            f"clusterpanel is not set up: {'; '.join(missing)}. {HOW_TO_FIX}"
        )


def read_secret_file(path: Path) -> str:
    """A key file the bootstrap step made; a clear error when it is missing or empty."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise ImproperlyConfigured(f"{path} does not exist. {HOW_TO_FIX}") from None
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read {path}: {exc}") from None
    if not value:
        raise ImproperlyConfigured(f"{path} is empty")
    return value


def new_encryption_key() -> str:
    # The format of clusterpanel.crypto.new_key: urlsafe base64 of 32 random bytes.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Report:
    """What a bootstrap created, in order, and what it found wrong but left alone."""

    created: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# Everything bootstrapped in this process: manage.py runs the step before Django is set up and
# the command reports it afterwards.
_this_process = Report()


def bootstrap() -> Report:
    """Create what ``needs()`` says is missing; returns what this call created."""
    what = needs()
    report = Report()
    try:
        what.data.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass  # there already, or made by a bootstrap running at the same time
    else:
        report.created.append(f"Created the data directory {what.data} (mode 0700).")
    if what.secret_key:
        if _create_secret(what.secret_key_file, lambda: secrets.token_urlsafe(64)):
            report.created.append(
                f"Created {what.secret_key_file} (mode 0600): Django's secret key."
            )
        _warn_if_shared(what.secret_key_file, report)
    if what.encryption_keys:
        if _create_secret(what.encryption_keys_file, new_encryption_key):
            report.created.append(
                f"Created {what.encryption_keys_file} (mode 0600): the key that encrypts stored "
                "secrets. Back it up together with the database, starting now: without it the "
                "stored secrets cannot be read."
            )
        _warn_if_shared(what.encryption_keys_file, report)
    if what.database:
        if _create_private_file(what.database_file):
            report.created.append(
                f"Created {what.database_file} (mode 0600): the SQLite database, empty until "
                "migrations run."
            )
        _warn_if_shared(what.database_file, report)
    if what.broker:
        made = not what.broker_dir.is_dir()
        what.broker_dir.mkdir(mode=0o700, exist_ok=True)
        for folder in BROKER_FOLDERS:
            path = what.broker_dir / folder
            if not path.is_dir():
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                made = True
        if made:
            report.created.append(
                f"Created {what.broker_dir} (mode 0700): the Celery broker's folders."
            )
    if not what.static_root.is_dir():
        what.static_root.mkdir(parents=True, exist_ok=True)
        report.created.append(f"Created {what.static_root}: collected static files.")
    _this_process.created.extend(report.created)
    _this_process.warnings.extend(w for w in report.warnings if w not in _this_process.warnings)
    return report


def bootstrapped_in_this_process() -> Report:
    return _this_process


def _create_secret(path: Path, make: Callable[[], str]) -> bool:
    """Create ``path`` (0600) holding ``make()`` unless it exists; True if this call made it.

    Written to a temporary file first and linked into place, which fails if the file exists:
    two bootstraps at once keep one key, and no reader ever sees an empty key file.
    """
    if path.exists():
        return False
    value = make() + "\n"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_private(temp, value)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links: create it in place; O_EXCL still keeps one key.
            try:
                _write_private(path, value)
            except FileExistsError:
                return False
    finally:
        temp.unlink(missing_ok=True)
    return True


def _write_private(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())


def _create_private_file(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _warn_if_shared(path: Path, report: Report) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        report.warnings.append(
            f"{path} can be read by other users (mode {mode:04o}); `chmod 600 {path}` makes it "
            "private."
        )
