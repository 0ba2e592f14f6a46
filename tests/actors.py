"""The actor that test set-up code acts as: a command run on the panel's host, by nobody."""

from __future__ import annotations

from clusterpanel.security.audit import Actor

SETUP = Actor.for_command()
