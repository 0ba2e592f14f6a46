"""The one base of every input error the panel raises.

Pure Python, so that the kubeadm domain (``pki.domain``, ``nodes.rules``) can raise it without
Django. The API's exception handler turns an ``InputError`` into a 400 answer
``{"detail", "errors": {field: [messages]}}``; pages put the messages on the form field named.
"""

from __future__ import annotations

NON_FIELD = "non_field_errors"
# What a write that lost a race to another one is told (409), when nothing more precise is known.
COLLISION = (
    "The change collided with another change made at the same time; nothing was saved. "
    "Reload and try again."
)


class InputError(ValueError):
    """Input the panel refuses, with the field to blame (``non_field_errors`` if none)."""

    def __init__(self, message: str, field: str = NON_FIELD) -> None:
        super().__init__(message)
        self.field = field
        self.errors: dict[str, list[str]] = {field: [message]}

    @classmethod
    def many(cls, errors: dict[str, list[str]]) -> InputError:
        """One error carrying several fields (an import reports per file, a form per box)."""
        first_field = next(iter(errors))
        exc = cls(errors[first_field][0], first_field)
        exc.errors = {field: list(messages) for field, messages in errors.items()}
        return exc

    def text(self) -> str:
        """Every message on one line, for a page's flash message."""
        return "; ".join(message for messages in self.errors.values() for message in messages)


class Conflict(Exception):
    """A valid request the current state refuses (409): no usable token yet, a row that was
    deleted meanwhile. The message says why; callers may add their own way out."""
