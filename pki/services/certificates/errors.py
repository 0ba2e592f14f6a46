"""The error every refused PKI request raises, naming the input field at fault."""

from __future__ import annotations

from pki.domain.x509 import PKIError


class PKIInputError(PKIError):
    """A request the PKI refuses, with the input field to blame (``non_field_errors`` if none).

    A ``PKIError`` (and so a ``clusterpanel.errors.InputError``) raised by the services rather
    than by the pure modules; ``many`` carries several fields at once.
    """
