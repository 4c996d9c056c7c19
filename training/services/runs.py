"""Creating, cancelling and enqueueing training runs (the web's and the command line's side).

A run is enqueued on the gpu queue after its transaction commits, once what it trains from is ready: a mimic
waits for its teacher, an ensemble for its members. Whoever finishes a teacher enqueues the students that were
waiting for it, under the teacher's row lock, so a student created at that moment is enqueued exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from benchmark.models import Release, ReleaseStatus
from core.errors import ServiceError
from training.conf import training_settings
from training.models import FINISHED, TrainingRecipe, TrainingRun, TrainingRunStatus
from training.recipes import RecipeError, recipe_config

SUCCEEDED = TrainingRunStatus.SUCCEEDED


def _release(version: str) -> Release:
    release = Release.objects.filter(version=version).first()
    if release is None:
        raise ServiceError("release_unknown", f"There is no release {version!r}.", status_code=404)
    if release.status != ReleaseStatus.READY:
        raise ServiceError("release_not_ready", f"Release {version} is {release.status}; it must be ready.")
    return release


def _locked_dependencies(ids: list[int], release: Release) -> list[TrainingRun]:
    runs = list(TrainingRun.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    missing = set(ids) - {r.pk for r in runs}
    if missing:
        raise ServiceError("run_unknown", f"There is no training run {min(missing)}.", status_code=404)
    for run in runs:
        if run.release_id != release.pk:
            raise ServiceError(
                "run_other_release", f"Run {run.pk} trained on another release; a student must use its teacher's."
            )
        if run.status in (TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED):
            raise ServiceError("run_unusable", f"Run {run.pk} is {run.status}; it cannot teach.", status_code=409)
    return runs


def run_create(
    *,
    release: str,
    recipe: str,
    overrides: dict[str, Any] | None = None,
    teacher: int | None = None,
    members: list[int] | None = None,
    objective: str = "mimic_l2",
    user=None,
    base_config: str | Path | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """A queued run, enqueued after commit when its teacher (or every member) has succeeded (``enqueue=False``:
    the caller runs it in its own process)."""
    release_row = _release(release)
    if (recipe == TrainingRecipe.MIMIC) != (teacher is not None):
        raise ServiceError("run_teacher", "A mimic run needs a teacher run, and only a mimic run takes one.")
    if (recipe == TrainingRecipe.ENSEMBLE) != bool(members):
        raise ServiceError("run_members", "An ensemble needs its member runs, and only an ensemble takes them.")
    if members and len(set(members)) < 2:
        raise ServiceError("run_members", "An ensemble needs at least two different member runs.")
    try:
        config = recipe_config(
            recipe, base=base_config or training_settings().base_config, overrides=overrides, objective=objective
        )
    except RecipeError as exc:
        raise ServiceError("run_config_invalid", str(exc)) from exc
    with transaction.atomic():
        dependencies = _locked_dependencies([teacher] if teacher is not None else list(members or []), release_row)
        if recipe == TrainingRecipe.MIMIC and dependencies[0].recipe == TrainingRecipe.MIMIC:
            raise ServiceError("run_teacher", f"Run {teacher} is itself a mimic; choose a teacher run.")
        run = TrainingRun.objects.create(
            release=release_row,
            recipe=recipe,
            teacher=dependencies[0] if teacher is not None else None,
            config=config.to_dict(),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        if members:
            run.members.set(dependencies)
        ready = all(d.status == SUCCEEDED for d in dependencies)
        if not enqueue and not ready:
            raise ServiceError(
                "run_teacher_unfinished",
                "What this run learns from has not finished training; run it in the worker or wait.",
                status_code=409,
            )
        if enqueue and ready:
            enqueue_after_commit(run.pk)
    return run


def enqueue_after_commit(run_id: int) -> None:
    from training.tasks import run_train

    transaction.on_commit(lambda: run_train.delay(run_id))


def dependencies_of(run: TrainingRun) -> list[TrainingRun]:
    if run.teacher is not None:  # no query when teacher_id is None
        return [run.teacher]
    return list(run.members.all())


def students_ready_enqueue(*, run: TrainingRun) -> int:
    """After ``run`` succeeded (its row locked by the caller): enqueue each queued run that now has everything."""
    count = 0
    ids = list(run.students.values_list("pk", flat=True)) + list(run.ensembles.values_list("pk", flat=True))
    waiting = TrainingRun.objects.filter(pk__in=ids, status=TrainingRunStatus.QUEUED, cancel_requested=False)
    for student in waiting:
        if all(d.status == SUCCEEDED for d in dependencies_of(student)):
            enqueue_after_commit(student.pk)
            count += 1
    return count


def students_fail(*, run: TrainingRun) -> None:
    """After ``run`` failed or was cancelled: the queued runs waiting for it can never start."""
    ids = list(run.students.values_list("pk", flat=True)) + list(run.ensembles.values_list("pk", flat=True))
    waiting = TrainingRun.objects.select_for_update().filter(pk__in=ids, status=TrainingRunStatus.QUEUED)
    for student in waiting.order_by("pk"):
        student.status = TrainingRunStatus.FAILED
        student.error_code = "teacher_failed"
        student.error = f"Run {run.pk}, which this run learns from, is {run.status}."
        student.finished_at = timezone.now()
        student.save(update_fields=["status", "error_code", "error", "finished_at"])
        students_fail(run=student)


def run_cancel(*, run_id: int) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next progress report. 409 when finished."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            raise ServiceError("run_unknown", f"There is no training run {run_id}.", status_code=404)
        if run.status in FINISHED:
            raise ServiceError(
                "run_finished", f"Run {run_id} is {run.status}; there is nothing to cancel.", status_code=409
            )
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.status == TrainingRunStatus.QUEUED:
            run.status = TrainingRunStatus.CANCELLED
            run.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
        if run.status == TrainingRunStatus.CANCELLED:
            students_fail(run=run)
    return run


def run_requeue(*, run_id: int) -> TrainingRun:
    """Enqueue a queued or running run again (a lost message, a dead worker): the task's claim makes it safe."""
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ServiceError("run_unknown", f"There is no training run {run_id}.", status_code=404)
    if run.status in FINISHED:
        raise ServiceError("run_finished", f"Run {run_id} is {run.status}.", status_code=409)
    with transaction.atomic():
        enqueue_after_commit(run.pk)
    return run
