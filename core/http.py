"""HTTP helpers the apps share: byte ranges for files that players seek in and downloads resume, and the
conditional requests (ETag) that let clients skip what they already have."""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import get_conditional_response

from core.errors import ServiceError, error_body

_SPEC = re.compile(r"\s*(\d*)-(\d*)\s*")
_PAST_ANY_FILE = 10**18  # a position of more digits is past the end of any file: read as this, not by int()


def _position(digits: str) -> int:
    """The number ``digits`` spell; past 18 significant digits, ``_PAST_ANY_FILE`` (Python's int() refuses
    thousands of digits, which was a 500, and no file is that long)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 18 else _PAST_ANY_FILE


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range, clamped to the file as RFC 9110 (section 14.1.2) reads a
    last position past its end; None when the header is to be ignored and the whole file sent: another unit than
    bytes, which a server must ignore (section 14.2), or several ranges, which this server does not combine (it
    may ignore them). ServiceError 416 ``range_invalid`` for a malformed byte range, ``range_not_satisfiable``
    for one that starts past the end."""
    unit, equals, ranges = header.strip().partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in ranges:
        return None
    match = _SPEC.fullmatch(ranges)
    first, last = (match.group(1), match.group(2)) if match else ("", "")
    if match is None or (first == "" and last == "") or (first and last and _position(last) < _position(first)):
        raise ServiceError(
            "range_invalid", f"Range {header[:100]!r} is not one 'bytes=first-last' range.", status_code=416
        )
    if first == "":  # the last N bytes
        length = _position(last)
        if length == 0 or size == 0:
            raise ServiceError("range_not_satisfiable", "An empty suffix range selects nothing.", status_code=416)
        return max(0, size - length), size - 1
    start = _position(first)
    end = size - 1 if last == "" else min(_position(last), size - 1)
    if start >= size:
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
        if not request.headers.get("If-Match"):
            # Django's 412 for If-Unmodified-Since on a file with no modification date, which RFC 9110 (section
            # 13.1.4) says to ignore: the ETag is this file's validator.
            return None
        message = f"If-Match does not match this file's ETag {etag}."
        return JsonResponse(error_body("precondition_failed", message), status=412, headers={"ETag": etag})
    return outcome
