"""Request guards that must act before Django reads the body."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.errors import HTTP_413, error_body


class UploadSizeLimitMiddleware:
    """Refuse a body over UPLOAD_MAX_BODY_BYTES with 413 before any of it is parsed or stored.

    ``UPLOAD_MAX_BODY_BYTES_BY_PATH`` gives an endpoint (an exact path) its own cap, e.g. model submissions."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        by_path = getattr(settings, "UPLOAD_MAX_BODY_BYTES_BY_PATH", {})
        limit = by_path.get(request.path_info, settings.UPLOAD_MAX_BODY_BYTES)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(error_body("bad_request", "Content-Length is not a number."), status=400)
        if length > limit:
            message = f"The request body is {length} bytes; the limit is {limit} bytes."
            return JsonResponse(error_body("upload_too_large", message), status=HTTP_413)
        return self.get_response(request)
