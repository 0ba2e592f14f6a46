"""From a validated model serializer to the unsaved instance a service function writes."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers


def unsaved_instance(serializer: serializers.ModelSerializer) -> Any:  # type: ignore[type-arg]
    """The serializer's instance with the validated data applied, or a new one; not saved.

    For models without many-to-many fields, which is every inventory model. The serializer's
    ``instance`` is set to it, so ``serializer.data`` shows the row once the service saved it.
    """
    model: type[models.Model] = serializer.Meta.model
    instance = serializer.instance if serializer.instance is not None else model()
    for name, value in serializer.validated_data.items():
        setattr(instance, name, value)
    serializer.instance = instance
    return instance
