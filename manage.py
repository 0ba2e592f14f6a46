#!/usr/bin/env python
"""Django's command-line utility for clusterpanel."""

from __future__ import annotations

import os
import sys

# These commands create the data directory the settings need, so they do it before
# Django loads the settings (see clusterpanel/datadir.py).
BOOTSTRAPPING_COMMANDS = {"bootstrap_data_dir", "serve"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clusterpanel.settings")
    if sys.argv[1:2] and sys.argv[1] in BOOTSTRAPPING_COMMANDS:
        from clusterpanel.datadir import bootstrap

        bootstrap()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
