"""HTTP helpers the apps share: byte ranges for files that players seek in and downloads resume, and the
conditional requests (ETag) that let clients skip what they already have."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import get_conditional_response

from core.errors import ServiceError, error_body

# At most 18 digits a number: any real file fits, and a header of thousands of digits is a clear 416 instead of
# Python's int() refusing it (a 500).
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """(first, last) byte of a single ``bytes=`` range; ServiceError 416 for anything else or out of bounds."""
    match = _RANGE.match(header.strip())
    first, last = (match.group(1), match.group(2)) if match else ("", "")
    if match is None or (first == "" and last == ""):
        raise ServiceError(
            "range_invalid", f"Range {header[:100]!r} is not one 'bytes=first-last' range.", status_code=416
        )
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise ServiceError("range_not_satisfiable", "An empty suffix range selects nothing.", status_code=416)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        raise ServiceError(
            "range_not_satisfiable", f"Range {header[:100]!r} is outside the file's {size} bytes.", status_code=416
        )
    return start, end


def precondition_response(request: HttpRequest, *, etag: str, headers: dict[str, str]) -> HttpResponse | None:
    """The answer RFC 9110 (section 13.2.2) gives before any body: 304 when ``If-None-Match`` matches the ETag by weak
    comparison or is ``*`` (GET and HEAD), 412 when ``If-Match`` does not match by strong comparison; None to
    serve the resource. Django's ``get_conditional_response`` does the evaluation; ``headers`` are the ones the
    full response would carry (the 304 keeps ETag and Cache-Control from them). ``If-Range`` is the caller's:
    it decides between a range and the whole file, not whether to send one."""
    full = HttpResponse(headers=headers)
    outcome = get_conditional_response(request, etag=etag, response=full)
    if outcome is full or outcome is None:  # never None when given a response
        return None
    if outcome.status_code == 412:
        message = f"If-Match does not match this file's ETag {etag}."
        return JsonResponse(error_body("precondition_failed", message), status=412, headers={"ETag": etag})
    return outcome
