"""Size limits of list and object values (JSON fields), as model validators.

Every free-text field has a length limit (``max_length`` and a ``MaxLengthValidator``); every
list or object field has a ``ListLimit``, so forms, the API and the services refuse the same
sizes with the field named.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible


@deconstructible
class ListLimit:
    """At most ``max_items`` entries (list items, or keys of an object), and text items of at
    most ``max_length`` characters each."""

    def __init__(self, max_items: int, max_length: int | None = None) -> None:
        self.max_items = max_items
        self.max_length = max_length

    def __call__(self, value: Any) -> None:
        if isinstance(value, list | dict) and len(value) > self.max_items:
            raise ValidationError(
                f"at most {self.max_items} entries, not {len(value)}", code="too_many"
            )
        if self.max_length is not None and isinstance(value, list):
            for item in value:
                if isinstance(item, str) and len(item) > self.max_length:
                    raise ValidationError(
                        f"'{item[:20]}…' is longer than {self.max_length} characters",
                        code="too_long",
                    )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ListLimit)
            and other.max_items == self.max_items
            and other.max_length == self.max_length
        )

    def __hash__(self) -> int:
        return hash((self.max_items, self.max_length))
