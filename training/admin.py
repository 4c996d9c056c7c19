"""Training runs in the admin: read-only rows (the worker writes them), with cancel and re-enqueue actions."""

from __future__ import annotations

from django.contrib import admin, messages

from core.errors import ServiceError
from training.models import TrainingRun
from training.services.runs import run_cancel, run_requeue


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "release", "recipe", "teacher", "status", "cancel_requested", "attempts", "parameters",
                    "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "recipe", "release")
    readonly_fields = [f.name for f in TrainingRun._meta.fields] + ["members"]
    actions = ["cancel_runs", "requeue_runs"]

    def has_add_permission(self, request) -> bool:
        return False  # runs are created with manage.py train or the API, which check their recipe and teacher

    def _each(self, request, queryset, action, done: str) -> None:
        for run in queryset:
            try:
                action(run_id=run.pk)
                self.message_user(request, f"Run {run.pk}: {done}.")
            except ServiceError as exc:
                self.message_user(request, f"Run {run.pk}: {exc.message}", level=messages.WARNING)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset) -> None:
        self._each(request, queryset, run_cancel, "cancelled (a running run stops at its next progress report)")

    @admin.action(description="Enqueue the selected runs again (a lost message or a dead worker)")
    def requeue_runs(self, request, queryset) -> None:
        self._each(request, queryset, run_requeue, "enqueued")
