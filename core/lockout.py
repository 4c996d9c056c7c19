"""What a locked-out login gets (django-axes' AXES_LOCKOUT_CALLABLE): the API's error shape on the API, a page
elsewhere (the site's login and the admin's); 429 with Retry-After either way."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from core.errors import ServiceError, error_body

LOCKED_CODE = "login_locked"


def lockout_message() -> str:
    return "Too many failed logins from this address or for this account: wait, then try again."


def lockout_wait_s(request: HttpRequest | None = None) -> int:
    from axes.helpers import get_cool_off

    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    wait = lockout_wait_s(request)
    headers = {"Retry-After": str(wait)}
    if request.path.startswith("/api/"):
        body = {**error_body(LOCKED_CODE, lockout_message()), "retry_after_s": wait}
        return JsonResponse(body, status=429, headers=headers)
    context = {"message": lockout_message(), "minutes": math.ceil(wait / 60)}
    response = render(request, "frontend/too_many.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


def password_confirmed(request: HttpRequest, user: Any, password: str) -> bool:
    """Whether ``password`` is ``user``'s, asked through Django's ``authenticate`` so that django-axes counts a
    wrong one as a failed login for the account and the address: a session left open must not be an unlimited
    oracle for its password. Raises 429 ``login_locked`` while locked out, the right password included."""
    confirmed = authenticate(request, username=user.get_username(), password=password) if password else None
    if getattr(request, "axes_locked_out", False):
        raise ServiceError(LOCKED_CODE, lockout_message(), status_code=429, retry_after_s=lockout_wait_s(request))
    return confirmed is not None and confirmed.pk == user.pk
