"""The schema's error contract: every operation lists the 4xx answers it can give, each an ``Error`` body.

``ErrorDocumentingAutoSchema`` (settings ``DEFAULT_SCHEMA_CLASS``) adds the statuses that the view's own machinery
can answer, read from the generated operation and the view's classes, so that no view lists them by hand: 400 for a
request body or query parameters, 401 where credentials are read, 403 for stricter permissions and for session
CSRF, 404 for ids in the path and for pages, 406 where the Accept header is negotiated, 413 and 415 for a request
body, 429 for throttles. A view declares the refusals only its service knows (409, 410, a quota's 429...) with
``@extend_schema(responses={201: VoteOutput, **error_responses(409)})``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated

ERROR_MEDIA_TYPE = "application/json"  # every refusal, whatever the operation's own media types (core.errors)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ErrorSerializer(serializers.Serializer):
    """Names the shared component; its schema is :data:`ERROR_SCHEMA` (see ``ErrorSchemaExtension``)."""

    code = serializers.CharField()
    message = serializers.CharField()


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx of the API. `code` is stable and machine-readable; `message` is for people. Some "
    "codes add fields: `errors` (the fields' own messages) with `invalid`, `retry_after_s` with a 429.",
    "properties": {
        "code": {"type": "string", "example": "invalid"},
        "message": {"type": "string", "example": "name: This field is required."},
        "errors": {"description": "With `invalid`: each field's messages."},
        "retry_after_s": {"type": "integer", "description": "With a 429: seconds until a retry may succeed."},
    },
    "required": ["code", "message"],
    "additionalProperties": True,
}


class ErrorSchemaExtension(OpenApiSerializerExtension):
    """The component ``Error``: additional properties allowed, which a serializer cannot say."""

    target_class = ErrorSerializer

    def get_name(self, auto_schema, direction) -> str:
        return "Error"

    def map_serializer(self, auto_schema, direction) -> dict[str, Any]:
        return ERROR_SCHEMA


class ErrorDocumentingAutoSchema(AutoSchema):
    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for status_code in self._machinery_error_statuses(operation):
            responses.setdefault(str(status_code), {})
        for status_code, response in responses.items():
            if status_code.startswith("4"):
                self._as_error_response(int(status_code), response)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _as_error_response(self, status_code: int, response: dict[str, Any]) -> None:
        """Body ``Error`` as JSON and a description, whether the view declared the status or the machinery did."""
        component = self.resolve_serializer(ErrorSerializer, "response")
        response["content"] = {ERROR_MEDIA_TYPE: {"schema": component.ref}}
        if not response.get("description"):
            response["description"] = HTTPStatus(status_code).phrase

    def _machinery_error_statuses(self, operation: dict[str, Any]) -> set[int]:
        view, method = self.view, self.method
        parameters = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        has_body = "requestBody" in operation
        authenticators = view.get_authenticators()
        permissions = view.get_permissions()
        statuses: set[int] = set()
        if has_body or any(where == "query" for where, _ in parameters):
            statuses.add(400)  # a body or parameter refused (core.errors: "invalid" and the views' own codes)
        if authenticators:
            statuses.add(401)  # credentials missing where needed, or sent and wrong (even where anyone may call)
        if any(not isinstance(p, (AllowAny, IsAuthenticated)) for p in permissions) or (
            method in UNSAFE_METHODS and any(isinstance(a, SessionAuthentication) for a in authenticators)
        ):
            statuses.add(403)  # a stricter permission, or a session's request without its CSRF token
        if any(where == "path" for where, _ in parameters) or ("query", "page") in parameters:
            statuses.add(404)  # no such object, or a page past the end
        if isinstance(view.get_content_negotiator(), DefaultContentNegotiation):
            statuses.add(406)  # an Accept header that no renderer satisfies
        if has_body:
            statuses.update({413, 415})  # over the body cap (core.middleware), or a media type no parser reads
        if view.get_throttles():
            statuses.add(429)
        return statuses


def error_responses(*statuses: int) -> dict[int, type[ErrorSerializer]]:
    """The refusals a view's service can give beyond its machinery's, for ``@extend_schema(responses=...)``:
    ``responses={201: VoteOutput, **error_responses(409)}``."""
    return dict.fromkeys(statuses, ErrorSerializer)
