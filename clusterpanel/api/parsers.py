"""Request body parsing: every write endpoint takes a JSON object, of a sane depth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No input of the panel nests deeper than a few levels (kubeadm extra args: object of strings);
# a bound well above that keeps deep documents from exhausting the interpreter's stack.
MAX_JSON_DEPTH = 32


def json_depth(data: Any) -> int:
    """How deeply ``data`` nests (a scalar is 0), counted without recursion."""
    deepest = 0
    pending = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, Mapping):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


class JSONObjectParser(JSONParser):
    """DRF's JSON parser, refusing bodies that are not an object (``[...]``, ``3``, ``null``)
    and bodies nested deeper than ``MAX_JSON_DEPTH``.

    Views read fields with ``request.data.get(...)``; a list there would be a 500.
    """

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            data = None
            deep = True
        else:
            deep = json_depth(data) > MAX_JSON_DEPTH
        if deep:
            raise ParseError(f"The request body nests deeper than {MAX_JSON_DEPTH} levels.")
        if not isinstance(data, Mapping):
            raise ParseError("The request body must be a JSON object.")
        return data
