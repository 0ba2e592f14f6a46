"""Reading the flags a systemd unit starts its service with.

A binary-installed cluster keeps each component's configuration on its ``ExecStart=`` line:
``ExecStart=/opt/kubernetes/bin/kube-apiserver \\`` followed by one ``--flag=value \\`` per line,
sometimes with the flags in a variable of an ``EnvironmentFile=`` (``$KUBE_APISERVER_OPTS``).
This module turns a unit file (and the environment files it names, when the operator uploaded
them) into the service's flags, as systemd and Go's ``flag``/``pflag`` would read them:

1. logical lines: a trailing backslash joins the next line; ``#``/``;`` lines are comments;
2. ``[Service]`` keys: ``ExecStart=`` (the last non-empty one counts; an empty one resets),
   ``Environment=`` assignments and ``EnvironmentFile=`` paths (a leading ``-`` makes it optional);
3. the command is split into words like systemd does (quotes, backslash escapes); ``$NAME`` as a
   whole word expands into several words, ``${NAME}`` into one; a variable whose value is unknown
   (its environment file was not uploaded) is reported by name, never guessed;
4. flags: ``--name=value``, ``--name value`` (a value is the next word unless it starts with a
   dash), ``-name`` as Go's flag package allows, ``--name`` alone (a boolean). A repeated flag keeps
   its last value, as pflag does for single-valued flags.

etcd also reads its settings from ``ETCD_*`` environment variables (``ETCD_CERT_FILE`` is
``--cert-file``); those count as flags of the etcd unit when no flag overrides them.
Pure Python: no Django, no I/O.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pki.domain.binary_layout import ETCD, SERVICES

_SECTION = re.compile(r"^\[([^\]]+)\]$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE_VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
# ExecStart= prefixes that change how systemd runs the command, not what it runs.
_EXEC_PREFIXES = "-@:+!"


@dataclass
class Unit:
    """What one unit file says about its service.

    ``flags`` maps a flag name without dashes (``tls-cert-file``) to its value (``""`` for a bare
    boolean); ``env_files`` are the ``EnvironmentFile=`` paths (without the ``-``), with
    ``missing_env_files`` those that were not among the uploaded files; ``unresolved`` names the
    variables the command uses whose value is unknown; ``problems`` what made the unit unreadable.
    """

    name: str
    service: str
    command: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    env_files: list[str] = field(default_factory=list)
    missing_env_files: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def logical_lines(text: str) -> list[str]:
    """The unit's lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not pending and (line.startswith("#") or line.startswith(";")):
            continue
        if pending and (line.startswith("#") or line.startswith(";")):
            # systemd skips comment lines inside a continued line.
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            lines.append(pending.strip())
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines as systemd reads an ``EnvironmentFile=`` (quotes, continuations)."""
    values: dict[str, str] = {}
    for line in logical_lines(text):
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        # A quoted multi-line value keeps its joined spaces; collapse runs for tidy flags.
        values[key] = " ".join(value.split())
    return values


def _environment_assignments(value: str) -> dict[str, str]:
    """``Environment="A=1" B=2`` → {A: 1, B: 2}."""
    result: dict[str, str] = {}
    try:
        words = shlex.split(value)
    except ValueError:
        return result
    for word in words:
        key, sep, val = word.partition("=")
        if sep:
            result[key] = val
    return result


def service_of(unit_name: str, command: list[str]) -> str:
    """The component a unit runs: its file name (``kube-apiserver.service``) or its binary."""
    base = posixpath.basename(unit_name)
    for suffix in (".service", ".unit"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base in SERVICES:
        return base
    if command:
        binary = posixpath.basename(command[0])
        if binary in SERVICES:
            return binary
    return base


def parse_unit(
    name: str, text: str, find_file: Callable[[str], bytes | None] | None = None
) -> Unit:
    """Parse one unit file; ``find_file(path)`` returns an uploaded file's bytes (or None)."""
    env: dict[str, str] = {}
    env_files: list[str] = []
    exec_start = ""
    section = ""
    for line in logical_lines(text):
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            continue
        if section != "Service":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "ExecStart":
            exec_start = value  # the last one counts; an empty one resets the list
        elif key == "Environment":
            env.update(_environment_assignments(value))
        elif key == "EnvironmentFile" and value:
            env_files.append(value)
    unit = Unit(name=name, service="")
    for raw_path in env_files:
        path = raw_path.lstrip("-")
        unit.env_files.append(path)
        data = find_file(path) if find_file is not None else None
        if data is None:
            unit.missing_env_files.append(path)
            continue
        env.update(parse_env_file(data.decode("utf-8", "replace")))
    if not exec_start:
        unit.service = service_of(name, [])
        unit.problems.append("has no ExecStart= line in its [Service] section")
        return unit
    try:
        words = split_command(exec_start.lstrip(_EXEC_PREFIXES), env, unit.unresolved)
    except ValueError as exc:
        unit.service = service_of(name, [])
        unit.problems.append(f"its ExecStart= line cannot be split into words: {exc}")
        return unit
    unit.command = words
    unit.service = service_of(name, words)
    unit.flags = parse_flags(words[1:])
    if unit.service == ETCD:
        for key, value in _etcd_environment(env).items():
            unit.flags.setdefault(key, value)
    return unit


def split_command(line: str, env: Mapping[str, str], unresolved: list[str]) -> list[str]:
    """Words of an ``ExecStart=`` command with ``$NAME``/``${NAME}`` expanded from ``env``.

    Unknown variables are appended to ``unresolved`` and expand to nothing, as systemd does.
    """
    words: list[str] = []
    for word in shlex.split(line, comments=False, posix=True):
        whole = _WHOLE_VARIABLE.match(word)
        if whole:
            name = whole.group(1)
            if name in env:
                words += shlex.split(env[name])
            elif name not in unresolved:
                unresolved.append(name)
            continue

        def expand(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name in env:
                return env[name]
            if name not in unresolved:
                unresolved.append(name)
            return ""

        expanded = _VARIABLE.sub(expand, word)
        if expanded:
            words.append(expanded)
    return words


def parse_flags(args: list[str]) -> dict[str, str]:
    """``--a=1 --b 2 -c --d`` → {a: 1, b: 2, c: "", d: ""} (the last of a repeated flag wins)."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            continue  # a positional argument: none of the components takes one
        name, sep, value = word.lstrip("-").partition("=")
        if not name:
            continue
        if not sep and index < len(args) and not args[index].startswith("-"):
            value = args[index]
            index += 1
        flags[name] = value
    return flags


def _etcd_environment(env: Mapping[str, str]) -> dict[str, str]:
    """etcd's ``ETCD_CERT_FILE=…`` variables as flags (``cert-file``)."""
    return {
        key[len("ETCD_") :].lower().replace("_", "-"): value
        for key, value in env.items()
        if key.startswith("ETCD_") and len(key) > len("ETCD_")
    }
