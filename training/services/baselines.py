"""The platform's baselines on a release: the paper's three-way comparison, always started together.

Ba & Caruana's question is whether a shallow net trained to mimic a deep teacher beats the *same* shallow net
trained on the labels. A board with the teacher and its mimic but not that shallow net cannot answer it, so the
platform never starts one without the others: a deep MLP teacher, the shallow net of its parameter count on the
labels, and that shallow net as the teacher's mimic (``training.recipes`` matches the widths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from benchmark.models import Release
from core.errors import ServiceError
from training.conf import training_settings
from training.models import TrainingRecipe, TrainingRun, TrainingRunStatus
from training.recipes import RecipeError
from training.recipes import base_config as read_base_config
from training.services.execution import run_execute
from training.services.runs import run_create

BASELINE_RECIPES = (TrainingRecipe.TEACHER_DNN, TrainingRecipe.SNN_LABELS, TrainingRecipe.MIMIC)
_GONE = (TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED)
MAX_SEEDS = 10  # each seed is three runs; more is a sweep for the command line, not a button


@dataclass(frozen=True)
class Baselines:
    teacher: TrainingRun
    shallow: TrainingRun
    mimic: TrainingRun

    def __iter__(self):
        return iter((self.teacher, self.shallow, self.mimic))


def release_baseline_runs(*, release: Release) -> list[TrainingRun]:
    """The release's runs of the baseline recipes that are not failed or cancelled, oldest first."""
    return list(
        TrainingRun.objects.filter(release=release, recipe__in=BASELINE_RECIPES)
        .exclude(status__in=_GONE)
        .order_by("pk")
    )


def _lock_release_without_baselines(version: str) -> None:
    """Lock the release row (two operators, or a double click, start one set) and refuse a second set."""
    release = Release.objects.select_for_update().filter(version=version).first()
    if release is None:
        return  # run_create answers with its own error
    existing = release_baseline_runs(release=release)
    if existing:
        raise ServiceError(
            "baselines_exist",
            f"Release {version} already has baseline runs ({', '.join(str(r.pk) for r in existing)}); cancel them "
            "first to train a new set.",
            status_code=409,
        )


def seed_overrides(base_config: str | Path | None, seeds: int) -> list[dict[str, int]]:
    """Each set's overrides: set k trains with ``train.seed`` + k, and every set shares the first set's
    alignment (``align.seed`` fixed), so the spread between sets is the models' training noise, not the aligner's.
    The first set changes nothing, so one seed is exactly the base config."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ServiceError("baselines_seeds", f"Train between 1 and {MAX_SEEDS} seeds of the baselines, not {seeds}.")
    if seeds == 1:
        return [{}]
    try:
        config = read_base_config(base_config or training_settings().base_config)
    except RecipeError as exc:
        raise ServiceError("run_config", str(exc)) from exc
    first = config.train.seed
    align_seed = config.align.seed or first
    return [{} if k == 0 else {"train.seed": first + k, "align.seed": align_seed} for k in range(seeds)]


def release_baselines_create(
    *, release: str, base_config: str | Path | None = None, user=None, seeds: int = 1
) -> list[Baselines]:
    """Queue the three runs per seed: the teachers and the shallow nets go to the gpu queue after commit, each
    mimic when its own seed's teacher has succeeded."""
    sets = []
    with transaction.atomic():
        overrides = seed_overrides(base_config, seeds)
        _lock_release_without_baselines(release)
        for changes in overrides:
            common = {"release": release, "base_config": base_config, "user": user, "overrides": changes}
            teacher = run_create(recipe=TrainingRecipe.TEACHER_DNN, **common)
            shallow = run_create(recipe=TrainingRecipe.SNN_LABELS, **common)
            mimic = run_create(recipe=TrainingRecipe.MIMIC, teacher=teacher.pk, **common)
            sets.append(Baselines(teacher, shallow, mimic))
    return sets


def release_baselines_train(
    *,
    release: str,
    base_config: str | Path | None = None,
    user=None,
    seeds: int = 1,
    say: Callable[[str], None] = lambda _line: None,
) -> list[Baselines]:
    """Train the three runs per seed one after the other in this process (a mimic is created once its teacher
    exists)."""
    with transaction.atomic():
        overrides = seed_overrides(base_config, seeds)
        _lock_release_without_baselines(release)
        pairs = []
        for changes in overrides:
            common = {"release": release, "base_config": base_config, "user": user, "enqueue": False}
            teacher = run_create(recipe=TrainingRecipe.TEACHER_DNN, overrides=changes, **common)
            shallow = run_create(recipe=TrainingRecipe.SNN_LABELS, overrides=changes, **common)
            pairs.append((teacher, shallow, changes))
    sets = []
    for teacher, shallow, changes in pairs:
        for run in (teacher, shallow):
            say(f"Training {run.get_recipe_display().lower()}, run {run.pk}, on {release} here...")
            run_execute(run_id=run.pk)
            run.refresh_from_db()
        if teacher.status != TrainingRunStatus.SUCCEEDED:
            raise ServiceError(
                "run_teacher_failed",
                f"The teacher, run {teacher.pk}, ended {teacher.status}; no mimic can learn from it.",
            )
        common = {"release": release, "base_config": base_config, "user": user, "enqueue": False}
        mimic = run_create(recipe=TrainingRecipe.MIMIC, teacher=teacher.pk, overrides=changes, **common)
        say(f"Training the teacher's mimic, run {mimic.pk}, here...")
        run_execute(run_id=mimic.pk)
        mimic.refresh_from_db()
        sets.append(Baselines(teacher, shallow, mimic))
    return sets
