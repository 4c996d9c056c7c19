"""The benchmark app's settings (releases, downloads, submissions), read in one place (as DRF reads its own) and
checked when Django starts: a mistyped value fails ``manage.py check`` and every process's start, not a build or an
evaluation hours later."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import checks

from core.settings_checks import whole_numbers

AUDIO_FORMATS = ("wav", "flac")


@dataclass(frozen=True)
class ReleaseSettings:
    split_key: str  # RELEASE_SPLIT_KEY: the keyed hash that orders new speakers into splits
    min_group_speakers: int  # RELEASE_MIN_GROUP_SPEAKERS: smaller demographic groups are withheld
    audio_format: str  # RELEASE_AUDIO_FORMAT: the TIMIT tree's audio, wav or flac
    heartbeat_s: int  # RELEASE_HEARTBEAT_SECONDS: a build's worker beats this often
    heartbeat_stale_s: int  # RELEASE_HEARTBEAT_STALE_SECONDS: a silent build is reaped after this
    max_attempts: int  # RELEASE_MAX_ATTEMPTS: claims before a silent build fails

    @property
    def heartbeat_stale(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_stale_s)


@dataclass(frozen=True)
class SubmissionSettings:
    max_bytes: int  # SUBMISSION_MAX_BYTES
    daily_quota: int  # SUBMISSION_DAILY_QUOTA: per submitter and UTC day
    sandbox: dict  # SUBMISSION_SANDBOX: SandboxLimits' fields
    heartbeat_s: float  # SUBMISSION_HEARTBEAT_SECONDS
    heartbeat_stale_s: float  # SUBMISSION_HEARTBEAT_STALE_SECONDS
    max_recoveries: int  # SUBMISSION_MAX_RECOVERIES: re-queues of a silent evaluation before it fails

    @property
    def heartbeat_stale(self) -> timedelta:
        return timedelta(seconds=self.heartbeat_stale_s)


def release_settings() -> ReleaseSettings:
    """Read at each call, so that a test's or an operator's override is seen."""
    return ReleaseSettings(
        split_key=settings.RELEASE_SPLIT_KEY,
        min_group_speakers=settings.RELEASE_MIN_GROUP_SPEAKERS,
        audio_format=str(settings.RELEASE_AUDIO_FORMAT).lower(),
        heartbeat_s=settings.RELEASE_HEARTBEAT_SECONDS,
        heartbeat_stale_s=settings.RELEASE_HEARTBEAT_STALE_SECONDS,
        max_attempts=settings.RELEASE_MAX_ATTEMPTS,
    )


def submission_settings() -> SubmissionSettings:
    return SubmissionSettings(
        max_bytes=settings.SUBMISSION_MAX_BYTES,
        daily_quota=settings.SUBMISSION_DAILY_QUOTA,
        sandbox=dict(settings.SUBMISSION_SANDBOX),
        heartbeat_s=getattr(settings, "SUBMISSION_HEARTBEAT_SECONDS", 10),
        heartbeat_stale_s=getattr(settings, "SUBMISSION_HEARTBEAT_STALE_SECONDS", 120),
        max_recoveries=int(getattr(settings, "SUBMISSION_MAX_RECOVERIES", 2)),
    )


def benchmark_settings_check(**kwargs) -> list[checks.CheckMessage]:
    """Registered in BenchmarkConfig.ready()."""
    from benchmark.leaderboard.evaluation.sandbox import SandboxLimits
    from benchmark.throttling import byte_rate_parse

    problems: list[checks.CheckMessage] = []
    try:
        byte_rate_parse(settings.THROTTLE_DOWNLOAD_BYTES)
    except ValueError as exc:
        problems.append(checks.Error(str(exc), obj="THROTTLE_DOWNLOAD_BYTES", id="benchmark.E001"))
    releases, submissions = release_settings(), submission_settings()
    if releases.audio_format not in AUDIO_FORMATS:
        problems.append(
            checks.Error(
                f"RELEASE_AUDIO_FORMAT is {releases.audio_format!r}; one of {', '.join(AUDIO_FORMATS)}.",
                obj="RELEASE_AUDIO_FORMAT",
                id="benchmark.E002",
            )
        )
    if not releases.split_key:
        problems.append(checks.Error("RELEASE_SPLIT_KEY is empty.", obj="RELEASE_SPLIT_KEY", id="benchmark.E003"))
    problems += whole_numbers(
        (
            ("RELEASE_MIN_GROUP_SPEAKERS", releases.min_group_speakers, 1),
            ("RELEASE_HEARTBEAT_SECONDS", releases.heartbeat_s, 1),
            ("RELEASE_HEARTBEAT_STALE_SECONDS", releases.heartbeat_stale_s, 1),
            ("RELEASE_MAX_ATTEMPTS", releases.max_attempts, 1),
            ("SUBMISSION_MAX_BYTES", submissions.max_bytes, 1),
            ("SUBMISSION_DAILY_QUOTA", submissions.daily_quota, 0),
            ("SUBMISSION_MAX_RECOVERIES", submissions.max_recoveries, 0),
        ),
        id="benchmark.E004",
    )
    known = {f.name for f in dataclasses.fields(SandboxLimits)}
    unknown = sorted(set(submissions.sandbox) - known)
    if unknown:
        problems.append(
            checks.Error(
                f"SUBMISSION_SANDBOX has unknown keys: {', '.join(unknown)}.",
                obj="SUBMISSION_SANDBOX",
                id="benchmark.E005",
            )
        )
    return problems
