"""The training app's settings, read in one place (as DRF reads its own), and checked when Django starts: a
mistyped value fails ``manage.py check`` and every process's start, not a run hours later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core import checks

from core.settings_checks import whole_numbers


@dataclass(frozen=True)
class TrainingSettings:
    directory: Path  # TRAINING_DIR: the worker's cache of features, alignments and run directories
    base_config: Path  # TRAINING_BASE_CONFIG: the sizes this deployment trains at
    heartbeat_stale_s: int  # TRAINING_HEARTBEAT_STALE_SECONDS: a silent run's worker is taken to be dead after this
    max_attempts: int  # TRAINING_MAX_ATTEMPTS: claims before a silent run fails with worker_lost
    progress_s: int  # TRAINING_PROGRESS_SECONDS: progress, heartbeat and cancel checks at most this often

    @property
    def heartbeat_stale(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_stale_s)


def training_settings() -> TrainingSettings:
    """Read at each call, so that a test's or an operator's override is seen."""
    return TrainingSettings(
        directory=Path(settings.TRAINING_DIR),
        base_config=Path(settings.TRAINING_BASE_CONFIG),
        heartbeat_stale_s=settings.TRAINING_HEARTBEAT_STALE_SECONDS,
        max_attempts=settings.TRAINING_MAX_ATTEMPTS,
        progress_s=settings.TRAINING_PROGRESS_SECONDS,
    )


def training_settings_check(**kwargs) -> list[checks.CheckMessage]:
    """Registered in TrainingConfig.ready()."""
    conf = training_settings()
    problems: list[checks.CheckMessage] = []
    if not conf.base_config.is_file():
        problems.append(
            checks.Error(f"{conf.base_config} is not a file.", obj="TRAINING_BASE_CONFIG", id="training.E001")
        )
    problems += whole_numbers(
        (
            ("TRAINING_HEARTBEAT_STALE_SECONDS", conf.heartbeat_stale_s, 1),
            ("TRAINING_MAX_ATTEMPTS", conf.max_attempts, 1),
            ("TRAINING_PROGRESS_SECONDS", conf.progress_s, 0),
        ),
        id="training.E002",
    )
    if conf.heartbeat_stale_s >= 1 and conf.progress_s * 2 > conf.heartbeat_stale_s:
        problems.append(
            checks.Warning(
                "TRAINING_PROGRESS_SECONDS is more than half of TRAINING_HEARTBEAT_STALE_SECONDS: a live run may be "
                "taken for a dead one between two reports.",
                obj="TRAINING_PROGRESS_SECONDS",
                id="training.W001",
            )
        )
    return problems
