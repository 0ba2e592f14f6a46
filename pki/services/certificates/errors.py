"""The error every refused PKI request raises, naming the input field at fault."""

from __future__ import annotations

from pki.domain.x509 import (
    PKIError,
)


class PKIInputError(PKIError):
    """A request the PKI refuses, with the input field to blame (``non_field_errors`` if none)."""

    def __init__(self, message: str, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field
        self.errors: dict[str, list[str]] = {field: [message]}

    @classmethod
    def many(cls, errors: dict[str, list[str]]) -> PKIInputError:
        """One error carrying several fields (an import reports per file)."""
        first_field = next(iter(errors))
        exc = cls(errors[first_field][0], first_field)
        exc.errors = errors
        return exc
