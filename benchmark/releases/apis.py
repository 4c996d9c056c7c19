"""The releases API: list, detail (manifest, datasheet, checksums), file listings, and anonymous downloads with
HTTP Range (resumable) and ETag. Thin: the work is in selectors and services."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from benchmark.models import Release, ReleaseFile
from benchmark.public_api import PublicApi
from benchmark.releases import selectors
from benchmark.releases.services import release_checksums
from benchmark.throttling import ReleaseBytesThrottle
from core.errors import ServiceError
from core.http import parse_range, precondition_response
from core.pagination import Pagination, paginated
from core.schema import error_responses

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
    def get(self, request: Request, version: str, path: str) -> HttpResponseBase:
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
                byte_range = parse_range(range_header, found.size)
            except ServiceError as exc:
                response = Response(exc.as_dict(), status=416)
                response["Content-Range"] = f"bytes */{found.size}"
                return response
            if byte_range is not None:  # None: a Range to ignore (another unit, several ranges): the whole file
                (start, end), status = byte_range, 206
                headers["Content-Range"] = f"bytes {start}-{end}/{found.size}"
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers["Content-Length"] = str(max(0, end - start + 1))
        if request.method == "HEAD" or found.size == 0:
            return HttpResponse(status=status, headers=headers, content_type=content_type)
        self.bytes_throttle.charge(request, end - start + 1)
        return StreamingHttpResponse(
            _stream(found.storage_name, start, end), status=status, headers=headers, content_type=content_type
        )

    def head(self, request: Request, version: str, path: str) -> HttpResponseBase:
        return self.get(request, version, path)
