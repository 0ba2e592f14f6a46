"""Serializer fields that take the JSON type they describe, and nothing that merely converts.

DRF's own fields coerce: ``"name": 123`` becomes ``"123"``, ``"ssh_port": "22"`` becomes 22,
``"audit_enabled": "no"`` becomes False, ``"cluster": true`` names cluster 1. A client that sends
the wrong type has a bug, and the API says so (400 naming the field) instead of storing a guess.

Form-encoded and multipart bodies carry text only; there a number or a boolean is still read from
its text, as a form would. Every serializer of the panel uses these fields, through
``StrictModelSerializer`` for model fields and by name for declared ones.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import QueryDict
from rest_framework import serializers


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "a string" if isinstance(value, str) else type(value).__name__


def from_text(field: serializers.Field) -> bool:  # type: ignore[type-arg]
    """Whether the field's input came as form text (every value a string) rather than JSON."""
    root = field.root if field.parent is not None else field
    return isinstance(getattr(root, "initial_data", None), QueryDict)


class StrictCharField(serializers.CharField):
    default_error_messages = {"type": "must be a string, not {kind}"}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("type", kind=_kind(data))
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"type": "must be a whole number, not {kind}"}

    def to_internal_value(self, data: Any) -> int:
        text = isinstance(data, str) and from_text(self)
        if isinstance(data, bool) or not (isinstance(data, int) or text):
            self.fail("type", kind=_kind(data))
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"type": "must be true or false, not {kind}"}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool) and not (isinstance(data, str) and from_text(self)):
            self.fail("type", kind=_kind(data))
        return bool(super().to_internal_value(data))


class StrictChoiceField(serializers.ChoiceField):
    """A choice among strings: a number that prints like one is still not one."""

    default_error_messages = {"type": "must be a string, not {kind}"}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("type", kind=_kind(data))
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A row named by its id: a whole number (``true`` is not row 1)."""

    default_error_messages = {"type": "must be an id (a whole number), not {kind}"}

    def to_internal_value(self, data: Any) -> Any:
        text = isinstance(data, str) and from_text(self)
        if isinstance(data, bool) or not (isinstance(data, int) or text):
            self.fail("type", kind=_kind(data))
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    """A model serializer whose generated fields are the strict ones above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictCharField,
        models.IntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.SmallIntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.BooleanField: StrictBooleanField,
    }
    serializer_related_field = StrictPrimaryKeyRelatedField
    serializer_choice_field = StrictChoiceField
