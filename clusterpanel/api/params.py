"""Query parameters that name rows by id, and bounded whole numbers."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request

# Largest id a 64-bit primary key holds; larger numbers cannot name a row (and SQLite
# refuses to bind them at all).
MAX_ID = 2**63 - 1


def is_object_id(value: object) -> bool:
    """True for a whole number that can be a primary key (ASCII digits only: '²' is no id)."""
    text = str(value)
    return text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID


def query_id(request: Request, name: str, what: str = "an id") -> int | None:
    """``?name=<id>`` as an int, None when absent; a 400 naming the parameter when malformed."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not is_object_id(value):
        raise serializers.ValidationError({name: [f"must be {what} (a whole number)"]})
    return int(value)


def query_int(request: Request, name: str, minimum: int, maximum: int) -> int | None:
    """``?name=<n>`` as an int in ``minimum..maximum``, None when absent; else a 400 naming it."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or not minimum <= int(text) <= maximum:
        raise serializers.ValidationError(
            {name: [f"must be a whole number from {minimum} to {maximum}"]}
        )
    return int(text)
