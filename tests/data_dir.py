"""A pytest plugin (``-p tests.data_dir`` in pyproject.toml) that bootstraps the tests' data dir.

pytest-django loads the settings before any conftest.py is imported, and the settings refuse
to load without the key files, so this runs earlier: it picks the data directory (``var/test``
unless CLUSTERPANEL_DATA_DIR says otherwise; never the developer's ``var``) and runs the same
bootstrap step as ``manage.py serve``. Processes the tests start inherit the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    os.environ.setdefault("CLUSTERPANEL_DATA_DIR", str(ROOT / "var" / "test"))
    from clusterpanel.datadir import bootstrap

    bootstrap()
