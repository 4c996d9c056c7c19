"""Helpers for the training-run tests: a small release and a base config that trains on it in seconds."""

from __future__ import annotations

import json
from pathlib import Path

TINY_BASE = {
    "align": {"rounds": 1, "hidden": 32, "layers": 1, "epochs": 1, "frames_per_epoch": 0, "hmm_stages": [4, 2]},
    "model": {"kind": "dnn", "depth": 2, "width": 32, "dropout": 0.0, "bottleneck": 8},
    "train": {"epochs": 2, "frames_per_epoch": 0, "batch_size": 128, "lr": 0.002, "device": "cpu"},
    "decode": {"acoustic_scales": [1.0], "prior_scales": [1.0], "lm_weights": [1.0], "insertion_penalties": [0.0]},
}


def write_base_config(folder: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY_BASE))
    for section, values in changes.items():
        config[section].update(values)
    path = folder / "base.json"
    path.write_text(json.dumps(config))
    return path


def running_run(folder: Path, **progress):
    """Release v1 (six speakers, a clip each) and a teacher run on it that a worker is training right now: epoch 1
    of 2, ``progress`` added to what its last report said."""
    from django.utils import timezone

    from tests.benchmark.conftest import build, make_corpus
    from training.models import TrainingRun, TrainingRunStatus
    from training.services.runs import run_create

    make_corpus(speakers=6, clips_each=1)
    build("v1")
    run = run_create(release="v1", recipe="teacher-dnn", base_config=write_base_config(folder), enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRunStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        attempts=1,
        progress={"stage": "train", "event": "step", "epoch": 1, "epochs": 2, "batch": 10, "batches": 40, **progress},
    )
    run.refresh_from_db()
    return run
