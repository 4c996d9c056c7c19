"""The training-runs API: anyone reads runs and their curves; staff start and cancel them. Thin: services do it."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ServiceError
from core.inputs import StrictIntegerField
from training import selectors
from training.models import TrainingRecipe, TrainingRun
from training.services.runs import run_cancel, run_create

LOG_TAIL = 4000


class RunOutput(serializers.ModelSerializer):
    name = serializers.CharField()
    objective = serializers.CharField()
    release = serializers.CharField(source="release.version")
    members = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    percent = serializers.SerializerMethodField()
    log_tail = serializers.SerializerMethodField()
    onnx_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id", "name", "release", "recipe", "teacher", "members", "objective", "status", "cancel_requested",
            "created_at", "started_at", "heartbeat_at", "finished_at", "attempts", "progress", "percent",
            "history", "metrics", "hardware", "frames_per_second", "parameters", "submission", "onnx_url",
            "error_code", "error", "config", "log_tail",
        ]  # fmt: skip

    def get_percent(self, obj: TrainingRun) -> float | None:
        return selectors.run_percent(obj)

    def get_log_tail(self, obj: TrainingRun) -> str:
        return obj.log[-LOG_TAIL:]

    def get_onnx_url(self, obj: TrainingRun) -> str | None:
        return f"/api/v1/training/runs/{obj.pk}/model.onnx" if obj.onnx else None


class RunCreateInput(serializers.Serializer):
    release = serializers.CharField(max_length=32)
    recipe = serializers.ChoiceField(choices=TrainingRecipe.choices)
    teacher = StrictIntegerField(required=False, allow_null=True, default=None, min_value=1)
    members = serializers.ListField(child=StrictIntegerField(min_value=1), required=False, default=list)
    objective = serializers.ChoiceField(choices=["mimic_l2", "mimic_soft"], default="mimic_l2")
    config = serializers.DictField(required=False, default=dict, help_text="Overrides, e.g. {'train.epochs': 4}.")


class RunListApi(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAdminUser()]

    @extend_schema(responses={200: RunOutput(many=True)})
    def get(self, request: Request) -> Response:
        runs = selectors.runs_list(release=request.query_params.get("release") or None)[:200]
        return Response(RunOutput(runs.prefetch_related("members"), many=True).data)

    @extend_schema(request=RunCreateInput, responses={201: RunOutput})
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
        return Response(RunOutput(selectors.run_get(run_id=run.pk)).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: RunOutput})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunOutput(selectors.run_get(run_id=run_id)).data)


class RunCancelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: RunOutput})
    def post(self, request: Request, run_id: int) -> Response:
        run_cancel(run_id=run_id)
        return Response(RunOutput(selectors.run_get(run_id=run_id)).data)


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
