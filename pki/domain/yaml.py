"""YAML output for Kubernetes manifests and kubeadm configuration files.

PyYAML quotes a string only when *YAML 1.1 as PyYAML reads it* would turn it into something else.
Kubernetes and kubeadm read YAML with go-yaml, which also turns plain scalars such as ``1e10``,
``0x1f``, ``0o17``, ``y`` or ``n`` into numbers or booleans. A bootstrap token id is six random
characters from ``[a-z0-9]`` and can look exactly like that, so every string that go-yaml could
read as a non-string is written double-quoted here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

# Plain scalars that go-yaml (YAML 1.1 rules plus strconv parsing) resolves to a number,
# a boolean or null.
_GO_YAML_NON_STRING = re.compile(
    r"""
    [-+]?(\.[0-9_]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?   # ints and floats
    | [-+]?0[xX][0-9a-fA-F_]+ | [-+]?0[oO]?[0-7_]+ | [-+]?0[bB][01_]+  # other int bases
    | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
    | [yY] | [nN] | yes|Yes|YES | no|No|NO | true|True|TRUE | false|False|FALSE
    | on|On|ON | off|Off|OFF | null|Null|NULL | ~ |
    """,
    re.VERBOSE,
)


class DoubleQuoted(str):
    """A string that is always written double-quoted (used for Secret ``stringData`` values)."""

    __slots__ = ()


class _ManifestDumper(yaml.SafeDumper):
    """SafeDumper that quotes go-yaml-ambiguous strings and never emits aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        # Anchors and aliases are legal YAML but surprise people reading a manifest.
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if isinstance(value, DoubleQuoted) or _GO_YAML_NON_STRING.fullmatch(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')
    return dumper.represent_str(value)


_ManifestDumper.add_representer(str, _represent_str)
_ManifestDumper.add_representer(DoubleQuoted, _represent_str)


def dump_document(document: Mapping[str, Any]) -> str:
    """Return one YAML document, keys in insertion order."""
    return yaml.dump(
        document,
        Dumper=_ManifestDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )


def dump_documents(documents: Iterable[Mapping[str, Any]]) -> str:
    """Return several YAML documents separated by ``---`` lines."""
    return "---\n".join(dump_document(document) for document in documents)


def load_document(text: str | bytes) -> Any:
    """``yaml.safe_load`` for text that comes from outside: a document nested too deeply for the
    parser (it recurses) is a ``yaml.YAMLError`` like any other unreadable document."""
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise yaml.YAMLError("the document nests too deeply") from None
