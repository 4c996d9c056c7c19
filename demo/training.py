"""The demo's training: after the demo release, a small deep teacher, the shallow net of its parameter count on
the labels, and that shallow net as the teacher's mimic train on the CPU and reach the leaderboard as
baselines, through the same runs, tasks and evaluation as every release."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from benchmark.leaderboard.services import submission_evaluate
from benchmark.models import Release, ReleaseStatus
from training.models import TrainingRun
from training.services.baselines import release_baselines_create, release_baselines_train

DEMO_CONFIG = Path(settings.BASE_DIR) / "training" / "ml" / "configs" / "demo_cpu.json"
MODES = ("queue", "here", "no")


def demo_training(*, version: str, mode: str = "queue", out: Callable[[str], None] = print) -> list[TrainingRun]:
    """The paper's three-way comparison on the demo release: a deep teacher, the shallow net of the same
    parameter count trained on the labels, and that shallow net trained to mimic the teacher.

    ``queue``: hand the teacher and the shallow net to the gpu-queue worker (the mimic follows when the teacher
    finishes); ``here``: train all three and evaluate their submissions in this process; ``no``: nothing. Kept
    when the release has runs."""
    if mode == "no":
        return []
    release = Release.objects.filter(version=version, status=ReleaseStatus.READY).first()
    if release is None:
        out(f"No training: release {version} is not ready.")
        return []
    existing = list(TrainingRun.objects.filter(release=release).order_by("pk"))
    if existing:
        out(f"Training on {version}: runs {', '.join(str(r.pk) for r in existing)} already exist.")
        return existing
    if mode == "queue":
        [(teacher, shallow, mimic)] = release_baselines_create(release=version, base_config=DEMO_CONFIG)
        out(
            f"Training on {version}: teacher run {teacher.pk}, the shallow net on labels (run {shallow.pk}) and the "
            f"teacher's mimic (run {mimic.pk}) are queued; the worker trains them in a few minutes (follow them on "
            "/training/), then they appear on /leaderboard/."
        )
        return [teacher, shallow, mimic]
    [(teacher, shallow, mimic)] = release_baselines_train(release=version, base_config=DEMO_CONFIG, say=out)
    runs = [teacher, shallow, mimic]
    for run in runs:
        run.refresh_from_db()
        if run.submission_id:
            submission_evaluate(submission_id=run.submission_id)
        test = run.metrics.get("test", {})
        out(
            f"Run {run.pk} ({run.name}): {run.status}"
            + (f", {run.parameters:,} parameters, test PER {100 * test['per']:.1f} %" if "per" in test else "")
        )
    return runs
