"""Server-rendered pages: thin, reading through selectors."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from frontend.selectors import corpus_overview


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/home.html", {"overview": corpus_overview()})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and compose healthchecks: the process answers and the database too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
