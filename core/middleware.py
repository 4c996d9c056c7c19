"""Request guards that must act before Django reads the body."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from core import slots
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


class LargeUploadLimitMiddleware:
    """At most ``UPLOAD_LARGE_CONCURRENT`` bodies over ``UPLOAD_LARGE_BYTES`` are received and handled at once,
    across every web process: each holds a shared slot (core.slots) from before its body is read until its response
    is made, so that what receiving and checking large models takes (workers, disk, memory) stays bounded. One
    more is refused with 503 ``uploads_busy`` and a Retry-After, before any of its body is read.

    After UploadSizeLimitMiddleware, which has refused a body over its cap and a Content-Length that is not a
    number. A slot's lease (``UPLOAD_SLOT_LEASE_SECONDS``) frees it if its process is killed mid-upload."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if int(request.META.get("CONTENT_LENGTH") or 0) <= settings.UPLOAD_LARGE_BYTES:
            return self.get_response(request)
        slot = slots.slot_acquire(
            "large-uploads", slots=settings.UPLOAD_LARGE_CONCURRENT, lease_s=settings.UPLOAD_SLOT_LEASE_SECONDS
        )
        if slot is None:
            wait = settings.UPLOAD_LARGE_RETRY_SECONDS
            body = {
                **error_body("uploads_busy", f"Too many large uploads are in progress; try again in {wait} seconds."),
                "retry_after_s": wait,
            }
            return JsonResponse(body, status=503, headers={"Retry-After": str(wait)})
        try:
            return self.get_response(request)
        finally:
            slots.slot_release(slot)
