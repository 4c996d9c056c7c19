"""One page shape for every list of the API: ``{count, next, previous, results}``, ``?page=`` and ``?page_size=``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import ServiceError
from core.inputs import parse_id


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # A page past the end, or not a number, is DRF's 404 ``{code: not_found, message: "Invalid page."}``.

    def get_page_number(self, request, paginator):
        """``?page=`` in ASCII digits only (core.inputs): DRF reads it with ``int()``, which takes other scripts'
        digits, so one page answered to many spellings."""
        raw = request.query_params.get(self.page_query_param) or "1"
        if raw in self.last_page_strings:
            return paginator.num_pages
        if parse_id(raw) is None:
            raise NotFound("Invalid page.")
        return raw

    def get_schema_operation_parameters(self, view) -> list[dict]:
        """DRF's, with the lower bound this class enforces: a page or page size under 1 is refused."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = parse_id(raw)
        if size is None:
            raise ServiceError("page_size_invalid", "page_size is a whole number of ASCII digits, at least 1.")
        return min(size, self.max_page_size)


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
    # Django's Paginator underneath takes any sequence; djangorestframework-stubs say QuerySet only.
    page = paginator.paginate_queryset(items, request)  # type: ignore[arg-type]
    response = paginator.get_paginated_response(serialize(page))
    if extra:
        response.data = {**extra, **response.data}
    return response
