"""Reads of training runs for the API and the pages: lists, one run with what it links to, its curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from core.errors import ServiceError
from training.models import TrainingRun

if TYPE_CHECKING:
    from benchmark.models import SubmissionResult


def runs_list(*, release: str | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("release", "teacher", "submission").order_by("-created_at", "-id")
    return runs.filter(release__version=release) if release else runs


# Columns only one run's page shows: the log alone may be 100,000 characters a run, and a release's facts hold a
# duration per clip.
_ONE_RUN_ONLY = ("log", "history", "hardware", "error", "release__facts", "release__error")


def runs_summaries(*, release: str | None = None) -> QuerySet[TrainingRun]:
    """The API's run list: one query for a page of runs and their releases, one for their members."""
    runs = TrainingRun.objects.select_related("release").defer(*_ONE_RUN_ONLY, "metrics").order_by("-created_at", "-id")
    runs = runs.filter(release__version=release) if release else runs
    return runs.prefetch_related("members")


def runs_page(*, limit: int = 200) -> list[TrainingRun]:
    """The runs page's rows (the newest ``limit``): their test metrics and baseline submissions, nothing heavier."""
    runs = TrainingRun.objects.select_related("release", "submission").defer(*_ONE_RUN_ONLY)
    return list(runs.order_by("-created_at", "-id")[:limit])


def run_get(*, run_id: int) -> TrainingRun:
    run = runs_list().prefetch_related("members", "students").filter(pk=run_id).first()
    if run is None:
        raise ServiceError("run_unknown", f"There is no training run {run_id}.", status_code=404)
    return run


def runs_board_results(runs: list[TrainingRun]) -> dict[int, SubmissionResult]:
    """Run id -> its baseline submission's leaderboard result on the run's own release (one query): the
    number the board ranks, shown beside the run's own evaluation so that the two are never confused."""
    from benchmark.models import SubmissionResult

    wanted = {(run.submission_id, run.release_id): run.pk for run in runs if run.submission_id}
    results = SubmissionResult.objects.filter(
        submission_id__in={submission for submission, _ in wanted}, release_id__in={release for _, release in wanted}
    )
    return {
        wanted[(result.submission_id, result.release_id)]: result
        for result in results
        if (result.submission_id, result.release_id) in wanted
    }


def run_percent(run: TrainingRun) -> float | None:
    """How far training has got, 0-100, from the epoch and batch; None before the first report."""
    progress = run.progress or {}
    if run.status == "succeeded":
        return 100.0
    epochs, epoch = progress.get("epochs"), progress.get("epoch")
    if not epochs or not epoch:
        return None
    within = progress.get("batch", 0) / max(1, progress.get("batches", 1)) if progress.get("event") == "step" else 1.0
    return round(100 * min(1.0, (epoch - 1 + within) / epochs), 1)


@dataclass(frozen=True)
class Curve:
    """One metric per epoch as an SVG polyline in a box of the given size."""

    name: str
    points: str  # "x,y x,y ..."
    labels: list[tuple[float, float, str]]  # (x, y, text) of each point's value
    y_min: float
    y_max: float
    width: int
    height: int


def run_curves(run: TrainingRun, *, width: int = 420, height: int = 200) -> list[Curve]:
    """Training loss and dev frame accuracy per epoch, the two curves of the run page."""
    curves = []
    for key, name in (("loss", "training loss"), ("dev_frame_acc", "dev frame accuracy")):
        values = [(r["epoch"], r[key]) for r in run.history if r.get(key) is not None]
        if not values:
            continue
        low, high = min(v for _, v in values), max(v for _, v in values)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        last = max(1, max(e for e, _ in values))
        left, right, top, bottom = 48, width - 12, 12, height - 28
        coords = [
            (
                round(left + (e - 1) / max(1, last - 1) * (right - left), 1),
                round(bottom - (v - low) / (high - low) * (bottom - top), 1),
                v,
            )
            for e, v in values
        ]
        curves.append(
            Curve(
                name=name,
                points=" ".join(f"{x},{y}" for x, y, _ in coords),
                labels=[(x, y, f"{v:.3g}") for x, y, v in coords],
                y_min=low,
                y_max=high,
                width=width,
                height=height,
            )
        )
    return curves
