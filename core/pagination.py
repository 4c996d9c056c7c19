"""One page shape for every list of the API: ``{count, next, previous, results}``, ``?page=`` and ``?page_size=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # A page past the end, or not a number, is DRF's 404 ``{code: not_found, message: "Invalid page."}``.


def paginated(
    request: Request,
    items: QuerySet | Sequence,
    serialize,
    *,
    paginator: Pagination | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The page ``request`` asks for of ``items``, each serialised by ``serialize(page_items)``; ``extra`` keys
    are added beside ``results`` (e.g. a quota)."""
    paginator = paginator or Pagination()
    page = paginator.paginate_queryset(items, request)
    response = paginator.get_paginated_response(serialize(page))
    if extra:
        response.data = {**extra, **response.data}
    return response
