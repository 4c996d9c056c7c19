"""A lean dispatch for the API's busiest endpoints: DRF's answers, without DRF's machinery on every request.

Why. The validation page sends one request per judged clip, a vote whose answer carries the next clip, and on the
2-core machine DRF's request wrapping, authentication loop, content negotiation, throttle objects and input
serializer were about a fifth of the workers' CPU on that path (py-spy, benchmarks/vote_api.py). The answers'
JSON, headers and error codes must stay exactly DRF's, and the OpenAPI schema, generated from the views, true.

How. A view that mixes in :class:`LeanTokenDispatch` keeps its DRF class (its schema, and the path every other
request takes) and answers the common request itself: a method it names, ``Authorization: Token <key>`` (the
first authenticator, which then decides alone), an ``Accept`` that DRF's negotiation would answer with JSON and
no ``?format=``, and an input the view's ``lean_input`` reads exactly as its serializer would. Anything else goes
to DRF's ``dispatch`` before anything has been counted or written: a bad token (DRF answers 401), an odd header
or body. The lean path then runs the same steps in DRF's order, with the view's own classes: authentication
(the same statement), permissions, throttles (the same counters), the handler; a refusal is rendered by DRF's
own exception handling and ``finalize_response``, a success by DRF's JSONRenderer with the headers DRF adds.
tests/contributors/test_lean_dispatch.py sends the same requests both ways and compares the answers.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.errors import ServiceError

# Accept headers whose negotiation DRF settles on JSONRenderer with no parameters (no indent, no version).
_JSON_ACCEPTS = frozenset({None, "*/*", "application/json"})
_JSON = JSONRenderer()


class NotLean(Exception):
    """Raised by ``lean_input``: this request is DRF's to answer."""


def _reject_constant(name: str) -> Any:
    raise NotLean  # NaN and Infinity: DRF's strict JSON parser refuses them


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body as DRF's JSONParser reads it, when it is a JSON object in UTF-8; :class:`NotLean` otherwise."""
    if request.content_type != "application/json" or request.content_params.get("charset", "utf-8").lower() not in (
        "utf-8",
        "utf8",
    ):
        raise NotLean
    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # malformed, nested too deeply, or not UTF-8: DRF's parse error
        raise NotLean from exc
    if not isinstance(data, dict):
        raise NotLean
    return data


class LeanTokenDispatch(APIView):
    """Mix in before the view's DRF class; implement ``lean_methods``, ``lean_input`` and ``lean``."""

    lean_methods: frozenset[str] = frozenset()

    def lean_input(self, request: HttpRequest) -> Any:
        """The handler's input, read as the view's serializer reads it; raise :class:`NotLean` for DRF's path."""
        return None

    def lean(self, request: HttpRequest, user: Any, data: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        """The handler: (the answer's data, its status). A ServiceError or APIException becomes DRF's answer."""
        raise NotImplementedError

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = self._lean_key(request)
        if key is None:
            return super().dispatch(request, *args, **kwargs)
        authenticator = self.get_authenticators()[0]
        try:
            user, token = authenticator.authenticate_credentials(key)
            data = self.lean_input(request)
        except (exceptions.APIException, NotLean):
            return super().dispatch(request, *args, **kwargs)  # nothing counted or written yet
        request.user = user  # as DRF's Request sets it on Django's request
        if not all(permission.has_permission(request, self) for permission in self.get_permissions()):
            return super().dispatch(request, *args, **kwargs)
        try:
            self._lean_throttle(request)
            answer, status = self.lean(request, user, data, *args, **kwargs)
        except (ServiceError, exceptions.APIException) as exc:
            return self._drf_error(request, exc, user, token, *args, **kwargs)
        response = HttpResponse(_JSON.render(answer, _JSON.media_type), status=status, content_type=_JSON.media_type)
        return self._headers_added(response)

    def _lean_key(self, request: HttpRequest) -> str | None:
        """The token's key when the lean path may answer this request, else None (DRF's ``get_authorization_header``
        and ``TokenAuthentication.authenticate``, read the same way)."""
        if request.method not in self.lean_methods or not settings.API_LEAN_DISPATCH:
            return None
        if request.META.get("HTTP_ACCEPT") not in _JSON_ACCEPTS or api_settings.URL_FORMAT_OVERRIDE in request.GET:
            return None
        authenticators = self.authentication_classes
        if not authenticators or not issubclass(authenticators[0], TokenAuthentication):
            return None
        try:
            parts = request.META.get("HTTP_AUTHORIZATION", "").encode("iso-8859-1").split()
            if len(parts) != 2 or parts[0].lower() != authenticators[0].keyword.lower().encode():
                return None
            return parts[1].decode()
        except UnicodeError:
            return None

    def _lean_throttle(self, request: HttpRequest) -> None:
        """APIView.check_throttles on Django's request (the throttles read its user and address only)."""
        waits = [throttle.wait() for throttle in self.get_throttles() if not throttle.allow_request(request, self)]
        if waits:
            self.throttled(request, max((wait for wait in waits if wait is not None), default=None))

    def _drf_error(
        self, request: HttpRequest, exc: Exception, user: Any, token: Any, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """The refusal as DRF's dispatch renders it: its request, negotiation, exception handler and headers."""
        drf_request = self.initialize_request(request, *args, **kwargs)
        drf_request.user, drf_request.auth = user, token
        self.request, self.args, self.kwargs = drf_request, args, kwargs
        self.headers = self.default_response_headers
        self.format_kwarg = self.get_format_suffix(**kwargs)
        drf_request.accepted_renderer, drf_request.accepted_media_type = self.perform_content_negotiation(drf_request)
        response = self.handle_exception(exc)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response

    def _headers_added(self, response: HttpResponse) -> HttpResponse:
        """The headers APIView.finalize_response adds (``Allow``; ``Vary: Accept`` with several renderers)."""
        headers = self.default_response_headers
        vary = headers.pop("Vary", None)
        if vary is not None:
            patch_vary_headers(response, [vary])
        for name, value in headers.items():
            response[name] = value
        return response
