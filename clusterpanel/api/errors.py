"""One error shape for the whole API: ``{"detail": ..., "errors": {field: [messages]}}``.

Anything unexpected becomes a plain 500 message without a traceback; the
traceback goes to the server log only.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from clusterpanel.errors import COLLISION, Conflict, InputError
from clusterpanel.web.middleware import too_large_message

logger = logging.getLogger(__name__)


class TooLarge(exceptions.APIException):
    """413: a body over the size limit (``clusterpanel.web.middleware.RequestSizeMiddleware``
    answers most of them before the API sees them; this is for bodies of unannounced length)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ConflictError(exceptions.APIException):
    """409: the request is fine but the current state does not allow it."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Not possible in the current state."
    default_code = "conflict"


def as_validation_error(error: InputError) -> exceptions.ValidationError:
    """A refusal raised inside a serializer's ``validate``, as DRF's own error."""
    return exceptions.ValidationError(error.errors)


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for field, messages in detail.items():
            if isinstance(messages, dict):
                for sub, sub_messages in _flatten(messages).items():
                    errors[f"{field}.{sub}"] = sub_messages
            elif isinstance(messages, list):
                flat: list[str] = []
                for index, item in enumerate(messages):
                    if isinstance(item, dict):
                        for sub, sub_messages in _flatten(item).items():
                            errors[f"{field}[{index}].{sub}"] = sub_messages
                    else:
                        flat.append(str(item))
                if flat:
                    errors[field] = flat
            else:
                errors[field] = [str(messages)]
        return errors
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, InputError):
        # Every domain and service refusal: the caller's input, a 400 naming the field.
        exc = exceptions.ValidationError(exc.errors)
    if isinstance(exc, Conflict):
        exc = ConflictError(str(exc))
    if isinstance(exc, IntegrityError):
        # A write that lost a race the service did not name (the services lock and re-validate
        # where a field can be named): the request may be fine, the state it counted on is gone.
        logger.warning("integrity error answered as a conflict: %s", exc)
        exc = ConflictError(COLLISION)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, RequestDataTooBig):
        exc = TooLarge(too_large_message(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    elif isinstance(exc, SuspiciousOperation):
        # Too many form fields or files, and the like: the request's fault, never a 500.
        exc = exceptions.ParseError(str(exc) or "The request could not be read.")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        # A service's refusal says why (and who may); a bare one gets DRF's wording.
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, OperationalError) and "locked" in str(exc):
        # SQLite (the embedded default) allows one writer at a time; past the wait, say so.
        logger.warning("database busy: %s", exc)
        return Response(
            {"detail": "The database is busy with another change; try again.", "errors": {}},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            {"detail": "Internal error; the administrator can find it in the server log."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        fields = ", ".join(sorted(errors))
        response.data = {"detail": f"Invalid input: {fields}.", "errors": errors}
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"detail": str(detail or response.data), "errors": {}}
    return response
