"""The releases API: list, detail (manifest, datasheet, checksums), file listings, and anonymous downloads with
HTTP Range (resumable) and ETag; the leaderboard's submissions and its board (JSON and CSV). Thin: the work is in
selectors and services."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benchmark import selectors
from benchmark.leaderboard.board import SORTS, Board, leaderboard_board, leaderboard_csv
from benchmark.models import Release, ReleaseFile, Submission, SubmissionDecoder
from benchmark.services.releases import release_checksums
from benchmark.services.submissions import (
    submission_cancel,
    submission_create,
    submission_get_owned,
    submission_quota_left,
)
from benchmark.throttling import ReleaseBytesThrottle
from core.errors import ServiceError
from core.http import parse_range, precondition_response
from core.pagination import Pagination, paginated
from core.schema import error_responses
from core.throttling import ScopedThrottle

CHUNK = 256 * 1024


def file_url(request: Request, version: str, path: str) -> str:
    return request.build_absolute_uri(f"/api/v1/releases/{version}/files/{path}")


class ReleaseSummary(serializers.ModelSerializer):
    splits = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "version",
            "status",
            "created_at",
            "finished_at",
            "clip_count",
            "speaker_count",
            "hours",
            "splits",
            "url",
        ]

    def get_splits(self, obj: Release) -> dict:
        return {s: v for s, v in obj.facts.get("splits", {}).items()}

    def get_url(self, obj: Release) -> str:
        return self.context["request"].build_absolute_uri(f"/api/v1/releases/{obj.version}/")


class FileOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseFile
        fields = ["path", "split", "format", "size", "sha256", "url"]

    def get_url(self, obj: ReleaseFile) -> str:
        return file_url(self.context["request"], obj.release.version, obj.path)


class JsonOnlyNegotiation(BaseContentNegotiation):
    """JSON always: ``?format=`` names a release format here, not DRF's renderer override."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PublicApi(APIView):
    """Anonymous and throttled: releases are open data."""

    content_negotiation_class = JsonOnlyNegotiation
    renderer_classes = [JSONRenderer]
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "downloads"


class ReleaseListApi(PublicApi):
    """Ready releases, newest first, a page at a time."""

    pagination_class = Pagination

    @extend_schema(responses={200: ReleaseSummary(many=True)})
    def get(self, request: Request) -> Response:
        releases = selectors.releases_public()
        return paginated(
            request, releases, lambda page: ReleaseSummary(page, many=True, context={"request": request}).data
        )


class ReleaseDetailApi(PublicApi):
    @extend_schema(responses={200: ReleaseSummary})
    def get(self, request: Request, version: str) -> Response:
        release = selectors.release_public_get(version=version)
        data = ReleaseSummary(release, context={"request": request}).data
        facts = {k: v for k, v in release.facts.items() if k not in ("durations_s", "options")}
        packages = selectors.release_files(release=release, format="package")
        data |= {
            "datasheet": facts,
            "readme_url": file_url(request, version, "README.md"),
            "manifest_url": file_url(request, version, "manifest.jsonl"),
            "checksums_url": file_url(request, version, "SHA256SUMS"),
            "checksums": release_checksums(release=release),
            "packages": FileOutput(packages.select_related("release"), many=True, context={"request": request}).data,
            "files": selectors.release_file_summary(release=release),
        }
        return Response(data)


class FilesPagination(Pagination):
    """A split's files by the thousand: the download tool follows ``next`` through a format's few pages."""

    page_size = 1000
    max_page_size = 5000


class ReleaseFilesApi(PublicApi):
    pagination_class = FilesPagination

    @extend_schema(
        parameters=[OpenApiParameter("split", str, required=False), OpenApiParameter("format", str, required=False)],
        responses={200: FileOutput(many=True)},
    )
    def get(self, request: Request, version: str) -> Response:
        release = selectors.release_public_get(version=version)
        files = selectors.release_files(
            release=release, split=request.query_params.get("split"), format=request.query_params.get("format")
        ).select_related("release")
        return paginated(
            request,
            files,
            lambda page: FileOutput(page, many=True, context={"request": request}).data,
            paginator=FilesPagination(),
        )


def _stream(name: str, start: int, end: int) -> Iterator[bytes]:
    with default_storage.open(name, "rb") as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


class ReleaseFileDownloadApi(PublicApi):
    """A published file; ``Range: bytes=N-`` resumes, ``If-None-Match`` (weak comparison, ``*``), ``If-Match`` and
    ``If-Range`` (strong) take the ETag (the file's sha256). Release files never change, so they may be cached for
    ever. Throttled by bytes sent (a split's thousands of small files cost what its tar costs) under a request-count
    ceiling."""

    def get_throttles(self) -> list:
        self.bytes_throttle = ReleaseBytesThrottle()  # kept: the view charges it once it knows the bytes
        return [*super().get_throttles(), self.bytes_throttle]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): bytes,
            (206, "application/octet-stream"): bytes,
            304: None,
            **error_responses(412, 416),
        }
    )
    def get(self, request: Request, version: str, path: str) -> HttpResponse:
        found = selectors.release_file_get(version=version, path=path)
        etag = f'"{found.sha256}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Disposition": f'attachment; filename="{path.rsplit("/", 1)[-1]}"',
        }
        conditional = precondition_response(request._request, etag=etag, headers=headers)
        if conditional is not None:  # 304 (If-None-Match, weak comparison, or *) or 412 (If-Match)
            return conditional
        start, end, status = 0, found.size - 1, 200
        range_header = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        # If-Range takes the range only on a strong match (RFC 9110, section 13.1.5): a weak ETag or a date never
        # matches here (the file has no Last-Modified), so the whole file is sent, as a changed file would be.
        if range_header and (if_range is None or if_range.strip() == etag):
            try:
                start, end = parse_range(range_header, found.size)
            except ServiceError as exc:
                response = Response(exc.as_dict(), status=416)
                response["Content-Range"] = f"bytes */{found.size}"
                return response
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{found.size}"
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers["Content-Length"] = str(max(0, end - start + 1))
        if request.method == "HEAD" or found.size == 0:
            return HttpResponse(status=status, headers=headers, content_type=content_type)
        self.bytes_throttle.charge(request, end - start + 1)
        return StreamingHttpResponse(
            _stream(found.storage_name, start, end), status=status, headers=headers, content_type=content_type
        )

    def head(self, request: Request, version: str, path: str) -> HttpResponse:
        return self.get(request, version, path)


# --- the leaderboard: submissions (authenticated) and the board itself (public) -----------------------------------
class SubmissionOutput(serializers.ModelSerializer):
    submitter = serializers.CharField(source="submitter.get_username")
    release = serializers.CharField(source="release.version", allow_null=True, default=None)
    results = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "uuid", "name", "description", "url", "decoder", "status", "failure_code", "failure_message",
            "is_baseline", "submitter", "release", "sha256", "size", "created_at", "started_at", "finished_at",
            "results",
        ]  # fmt: skip

    def get_results(self, obj: Submission) -> list[dict]:
        return [
            {
                "release": r.release.version,
                "blind": selectors.release_blind(release=r.release),
                "succeeded": r.succeeded,
                "failure_code": r.failure_code,
                "per_hidden": r.per_hidden,
                "substitutions": r.substitutions,
                "deletions": r.deletions,
                "insertions": r.insertions,
                "reference_phones": r.reference_phones,
                "per_public": r.per_public,
                "parameters": r.parameters,
                "depth": r.depth,
                "macs_per_second": r.macs_per_second,
                "rtf_median": r.rtf_median,
                "rtf_min": r.rtf_min,
                "rtf_max": r.rtf_max,
                "isolation": r.isolation,
            }
            for r in obj.results.all()
        ]


def _submissions(user) -> QuerySet[Submission]:
    return (
        Submission.objects.filter(submitter=user)
        .select_related("submitter", "release")
        .prefetch_related("results__release")
    )


class SubmissionCreateApi(APIView):
    """Upload an ONNX model (multipart field ``file``); it is checked now and evaluated by a worker."""

    parser_classes = [MultiPartParser, FormParser]

    class SubmissionCreateInput(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
        url = serializers.URLField(required=False, allow_blank=True, default="")
        decoder = serializers.ChoiceField(choices=SubmissionDecoder.choices, default=SubmissionDecoder.GREEDY)

    @extend_schema(request=SubmissionCreateInput, responses={201: SubmissionOutput, **error_responses(429)})
    def post(self, request: Request) -> Response:
        serializer = self.SubmissionCreateInput(data=request.data)
        if not serializer.is_valid():
            if "file" in serializer.errors:
                raise ServiceError("file_missing", "Send the ONNX model as the multipart field 'file'.")
            serializer.is_valid(raise_exception=True)
        submission = submission_create(user=request.user, **serializer.validated_data)
        data = SubmissionOutput(_submissions(request.user).get(pk=submission.pk)).data
        data["quota_left"] = submission_quota_left(user=request.user)
        return Response(data, status=status.HTTP_201_CREATED)


class SubmissionMinePagination(Pagination):
    """Your submissions' page, with the submissions you have left today beside it."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paged = super().get_paginated_response_schema(schema)
        paged["properties"] = {"quota_left": {"type": "integer", "example": 2}, **paged["properties"]}
        paged["required"] = ["quota_left", *paged["required"]]
        return paged


class SubmissionMineApi(APIView):
    """Your submissions, newest first, a page at a time, and ``quota_left`` for today."""

    pagination_class = SubmissionMinePagination

    @extend_schema(responses={200: SubmissionOutput(many=True)})
    def get(self, request: Request) -> Response:
        return paginated(
            request,
            _submissions(request.user),
            lambda page: SubmissionOutput(page, many=True).data,
            paginator=SubmissionMinePagination(),
            extra={"quota_left": submission_quota_left(user=request.user)},
        )


class SubmissionDetailApi(APIView):
    @extend_schema(responses={200: SubmissionOutput})
    def get(self, request: Request, submission_id: int) -> Response:
        submission = submission_get_owned(user=request.user, submission_id=submission_id)
        return Response(SubmissionOutput(_submissions(submission.submitter).get(pk=submission.pk)).data)


class SubmissionCancelApi(APIView):
    @extend_schema(request=None, responses={200: SubmissionOutput, **error_responses(409)})
    def post(self, request: Request, submission_id: int) -> Response:
        submission = submission_cancel(user=request.user, submission_id=submission_id)
        return Response(SubmissionOutput(_submissions(submission.submitter).get(pk=submission.pk)).data)


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
