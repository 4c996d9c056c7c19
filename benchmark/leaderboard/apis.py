"""The leaderboard API: the board as JSON and as CSV. Thin: the reads are benchmark.leaderboard's."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from benchmark.leaderboard.board import SORTS, Board, leaderboard_board, leaderboard_csv
from benchmark.models import SubmissionDecoder
from benchmark.public_api import PublicApi
from core.schema import error_responses

LEADERBOARD_PARAMETERS = [
    OpenApiParameter("release", str, required=False, description="A release version; default the latest."),
    OpenApiParameter(
        "sort",
        str,
        required=False,
        enum=[*SORTS, *(f"-{field}" for field in SORTS)],
        description=f"One of {', '.join(SORTS)}; '-' for descending. Default: the board's ranked PER (per_hidden, or "
        "per_public on a board that is not blind).",
    ),
]


def _leaderboard(request: Request) -> Board:
    return leaderboard_board(version=request.query_params.get("release"), sort=request.query_params.get("sort"))


class LeaderboardApi(PublicApi):
    """The board; ``blind`` is false (and ``note`` says why) when the release has no hidden split and the board
    ranks on the public test split."""

    @extend_schema(parameters=LEADERBOARD_PARAMETERS, responses={200: dict, **error_responses(404)})
    def get(self, request: Request) -> Response:
        board = _leaderboard(request)
        return Response(
            {
                "release": board.release.version if board.release else None,
                "blind": board.blind,
                "scored_on": board.scored_on,
                "note": board.note,
                "sort": board.sort,
                "decoders": {d.value: d.label for d in SubmissionDecoder},
                "results": board.rows,
            }
        )


class LeaderboardCsvApi(PublicApi):
    @extend_schema(parameters=LEADERBOARD_PARAMETERS, responses={(200, "text/csv"): bytes, **error_responses(404)})
    def get(self, request: Request) -> HttpResponse:
        board = _leaderboard(request)
        name = f"leaderboard-{board.release.version}" if board.release else "leaderboard"
        name += "" if board.blind else "-not-blind"
        return HttpResponse(
            leaderboard_csv(board.rows),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
