"""What every page form shares: a service's field errors shown on the form."""

from __future__ import annotations

from django import forms

from clusterpanel.errors import InputError


def add_errors(form: forms.BaseForm, error: InputError) -> None:
    """Put a service's ``{field: [messages]}`` on the form; unknown fields become form errors."""
    for name, messages in error.errors.items():
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message if target else f"{name}: {message}")
