"""Request body parsing: every write endpoint takes a JSON object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JSONObjectParser(JSONParser):
    """DRF's JSON parser, refusing bodies that are not an object (``[...]``, ``3``, ``null``).

    Views read fields with ``request.data.get(...)``; a list there would be a 500.
    """

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if not isinstance(data, Mapping):
            raise ParseError("The request body must be a JSON object.")
        return data
