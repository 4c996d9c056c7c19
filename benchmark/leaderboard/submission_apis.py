"""The submissions API: submit a model, list one's own, read one, cancel one. Thin: the work is in the submissions
service."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benchmark.leaderboard.services import (
    submission_cancel,
    submission_create,
    submission_get_owned,
    submission_quota_left,
)
from benchmark.models import Submission, SubmissionDecoder
from benchmark.releases import selectors
from core.errors import ServiceError
from core.pagination import Pagination, paginated
from core.schema import error_responses


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
