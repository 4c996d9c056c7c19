"""One error shape for the whole API: ``{"code": ..., "message": ..., ...}`` with a 4xx status.

Services raise :class:`ServiceError` with a stable machine-readable code; the exception handler turns it,
and every DRF or Django error, into that shape, so that clients never parse free text.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A refusal a client can act on: a stable code, a human message, an HTTP status."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            message = _first_message(value)
            return message if key == "non_field_errors" else f"{key}: {message}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        answer = Response(exc.as_dict(), status=exc.status_code)
        if "retry_after_s" in exc.extra:  # a 429 or 503 that says when to come back, as Retry-After too
            answer["Retry-After"] = str(exc.extra["retry_after_s"])
        return answer
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "message": _first_message(exc.detail), "errors": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        body: dict[str, Any] = {"code": code, "message": _first_message(exc.detail)}
        # Throttled.__init__ sets wait (whole seconds, or None); djangorestframework-stubs do not declare it.
        wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
        if wait is not None:
            body["retry_after_s"] = int(wait)
        response.data = body
    return response


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


HTTP_413 = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
