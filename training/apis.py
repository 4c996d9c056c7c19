"""The training-runs API: anyone reads runs and their curves; staff start and cancel them. Thin: services do it."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ServiceError
from core.inputs import StrictIntegerField
from core.pagination import Pagination, paginated
from core.schema import error_responses
from core.throttling import ScopedThrottle
from training import selectors
from training.models import TrainingRecipe, TrainingRun
from training.services.runs import run_cancel, run_create

LOG_TAIL = 4000


class RunSummaryOutput(serializers.ModelSerializer):
    """A run in the list: what a table of runs shows. No log, config, history, hardware or error message: the
    list is public and polled, and those made a page of runs megabytes (and showed tracebacks and hosts)."""

    name = serializers.CharField()
    objective = serializers.CharField()
    release = serializers.CharField(source="release.version")
    members = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    percent = serializers.SerializerMethodField()
    onnx_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "name", "release", "recipe", "teacher", "members", "objective", "status", "cancel_requested",
            "created_at", "started_at", "heartbeat_at", "finished_at", "attempts", "progress", "percent",
            "frames_per_second", "parameters", "submission", "onnx_url", "error_code",
        ]  # fmt: skip

    def get_percent(self, obj: TrainingRun) -> float | None:
        return selectors.run_percent(obj)

    def get_onnx_url(self, obj: TrainingRun) -> str | None:
        return f"/api/v1/training/runs/{obj.pk}/model.onnx" if obj.onnx else None


class RunOutput(RunSummaryOutput):
    """One run: the summary with its curves (history), metrics, config and hardware. ``log_tail`` and ``error`` (a
    failure's exception) are for staff; null for everyone else."""

    log_tail = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta(RunSummaryOutput.Meta):
        fields = [*RunSummaryOutput.Meta.fields, "history", "metrics", "hardware", "config", "error", "log_tail"]

    def _for_staff(self) -> bool:
        request = self.context.get("request")
        return bool(request and request.user and request.user.is_staff)

    def get_log_tail(self, obj: TrainingRun) -> str | None:
        return obj.log[-LOG_TAIL:] if self._for_staff() else None

    def get_error(self, obj: TrainingRun) -> str | None:
        return obj.error if self._for_staff() else None


class RunCreateInput(serializers.Serializer):
    release = serializers.CharField(max_length=32)
    recipe = serializers.ChoiceField(choices=TrainingRecipe.choices)
    teacher = StrictIntegerField(required=False, allow_null=True, default=None, min_value=1)
    members = serializers.ListField(child=StrictIntegerField(min_value=1), required=False, default=list)
    objective = serializers.ChoiceField(choices=["mimic_l2", "mimic_soft"], default="mimic_l2")
    config = serializers.DictField(required=False, default=dict, help_text="Overrides, e.g. {'train.epochs': 4}.")


class RunListApi(APIView):
    """Runs, newest first, a page at a time (``?release=`` filters); staff start one with POST."""

    pagination_class = Pagination
    throttle_classes = [ScopedThrottle]
    throttle_scope = "runs"

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAdminUser()]

    @extend_schema(
        parameters=[OpenApiParameter("release", str, required=False, description="Only this release's runs.")],
        responses={200: RunSummaryOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        runs = selectors.runs_summaries(release=request.query_params.get("release") or None)
        return paginated(request, runs, lambda page: RunSummaryOutput(page, many=True).data)

    @extend_schema(request=RunCreateInput, responses={201: RunOutput, **error_responses(404, 409)})
    def post(self, request: Request) -> Response:
        data = RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = run_create(
            release=values["release"],
            recipe=values["recipe"],
            teacher=values["teacher"],
            members=values["members"],
            objective=values["objective"],
            overrides=values["config"],
            user=request.user,
        )
        run = selectors.run_get(run_id=run.pk)
        return Response(RunOutput(run, context={"request": request}).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    """One run; a run page polls it every 2 s while the run is live (throttled with the list)."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "runs"

    @extend_schema(responses={200: RunOutput})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunOutput(selectors.run_get(run_id=run_id), context={"request": request}).data)


class RunCancelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: RunOutput, **error_responses(409)})
    def post(self, request: Request, run_id: int) -> Response:
        run_cancel(run_id=run_id)
        return Response(RunOutput(selectors.run_get(run_id=run_id), context={"request": request}).data)


class RunModelApi(APIView):
    """The run's ONNX export (the file its leaderboard entry was evaluated from)."""

    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, run_id: int) -> FileResponse:
        run = selectors.run_get(run_id=run_id)
        if not run.onnx or not default_storage.exists(run.onnx):
            raise ServiceError("run_no_model", f"Run {run_id} has no exported model yet.", status_code=404)
        return FileResponse(
            default_storage.open(run.onnx, "rb"),
            as_attachment=True,
            filename=f"run-{run.pk}-{run.name}.onnx",
            content_type="application/octet-stream",
        )
