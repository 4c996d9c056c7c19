"""Reads of training runs for the API and the pages: lists, one run with what it links to, its curves."""

from __future__ import annotations

import statistics
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


def runs_page(*, release: str | None = None, limit: int = 200) -> list[TrainingRun]:
    """The runs page's rows (the newest ``limit``, of one release when given): their test metrics and baseline
    submissions, nothing heavier."""
    runs = TrainingRun.objects.select_related("release", "submission").defer(*_ONE_RUN_ONLY)
    if release:
        runs = runs.filter(release__version=release)
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


# --- the paper's comparison on one release, over seeds -------------------------------------------------------------

# Rows in the order the paper reads them: the teacher, the shallow net on labels, its mimics; then the stronger
# teachers and the CTC peer when a release has them.
_ROW_ORDER = ("teacher-dnn", "teacher-cnn", "ensemble", "teacher-blstm", "blstm-ctc", "snn-labels", "mimic")
# The project's goal for the finding (issue #17): a mimic within this many PER points of its teacher at equal
# parameters, and the shallow net on labels at least this many points behind the mimic.
MIMIC_GOAL_POINTS = 0.5
SNN_GAP_GOAL_POINTS = 2.0


@dataclass(frozen=True)
class ComparisonRow:
    """Runs that differ only in their seed: each one's test PER, their mean and sample standard deviation."""

    label: str
    recipe: str
    objective: str
    parameters: int | None
    runs: list[TrainingRun]
    pers: list[float]  # test PER per run, as fractions, in the order of ``runs``

    @property
    def mean(self) -> float:
        return statistics.fmean(self.pers)

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.pers) if len(self.pers) > 1 else None


@dataclass(frozen=True)
class ComparisonVerdict:
    text: str
    points: float  # the difference of means, in PER points
    goal_text: str
    met: bool
    seeds: int  # the fewest seeds either row has


def _shape(run: TrainingRun) -> tuple:
    model, train = run.config.get("model", {}), run.config.get("train", {})
    return (
        run.recipe,
        run.objective,
        model.get("kind"),
        model.get("depth"),
        model.get("width"),
        model.get("bottleneck"),
        train.get("epochs"),
        train.get("temperature") if run.objective == "mimic_soft" else None,
    )


def _row_label(run: TrainingRun) -> str:
    model = run.config.get("model", {})
    kind, depth, width = model.get("kind"), model.get("depth"), model.get("width")
    if run.recipe == "snn-labels":
        return f"SNN on labels ({width} hidden, {model.get('bottleneck')}-unit bottleneck)"
    if run.recipe == "mimic":
        temperature = run.config.get("train", {}).get("temperature")
        how = "L2 on logits" if run.objective == "mimic_l2" else f"soft targets, T = {temperature}"
        return f"SNN-MIMIC, {how} ({width} hidden)"
    if run.recipe == "blstm-ctc":
        return f"BiLSTM-CTC {depth} \N{MULTIPLICATION SIGN} {width} (peer)"
    if kind in ("dnn", "cnn", "blstm"):
        return f"{run.get_recipe_display()} {depth} \N{MULTIPLICATION SIGN} {width}"
    return run.get_recipe_display()


def release_comparison(*, release: str) -> tuple[list[ComparisonRow], list[ComparisonVerdict]]:
    """The release's succeeded runs with a test PER, grouped into rows of runs that differ only in their seeds
    (``train.seed``), and the paper's two verdicts on the rows' means where the release has the rows: the mimic
    against its teacher, and the shallow net on labels against the mimic of its size."""
    runs = TrainingRun.objects.filter(release__version=release, status="succeeded").defer(*_ONE_RUN_ONLY).order_by("pk")
    groups: dict[tuple, list[TrainingRun]] = {}
    for run in runs:
        if run.metrics.get("test", {}).get("per") is not None:
            groups.setdefault(_shape(run), []).append(run)
    rows = [
        ComparisonRow(
            label=_row_label(members[0]),
            recipe=members[0].recipe,
            objective=members[0].objective,
            parameters=members[0].parameters,
            runs=members,
            pers=[run.metrics["test"]["per"] for run in members],
        )
        for members in groups.values()
    ]
    order = {recipe: i for i, recipe in enumerate(_ROW_ORDER)}
    rows.sort(key=lambda r: (order.get(r.recipe, len(order)), r.objective, r.parameters or 0))
    return rows, _verdicts(rows)


def _verdicts(rows: list[ComparisonRow]) -> list[ComparisonVerdict]:
    verdicts = []
    for mimic in (r for r in rows if r.recipe == "mimic"):
        # Against the row its own teachers are in, and the shallow net on labels of its own size.
        teachers = {run.teacher_id for run in mimic.runs}
        teacher = next((r for r in rows if teachers & {run.pk for run in r.runs}), None)
        shallow = next((r for r in rows if r.recipe == "snn-labels" and r.parameters == mimic.parameters), None)
        if teacher:
            behind = 100 * (mimic.mean - teacher.mean)
            verdicts.append(
                ComparisonVerdict(
                    f"{mimic.label} against the teacher: {behind:+.2f} PER points",
                    behind,
                    f"at most {MIMIC_GOAL_POINTS:+.1f}",
                    behind <= MIMIC_GOAL_POINTS,
                    min(len(mimic.runs), len(teacher.runs)),
                )
            )
        if shallow:
            gap = 100 * (shallow.mean - mimic.mean)
            verdicts.append(
                ComparisonVerdict(
                    f"SNN on labels against {mimic.label}: {gap:+.2f} PER points",
                    gap,
                    f"at least {SNN_GAP_GOAL_POINTS:+.1f}",
                    gap >= SNN_GAP_GOAL_POINTS,
                    min(len(mimic.runs), len(shallow.runs)),
                )
            )
    return verdicts
