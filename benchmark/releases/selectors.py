"""Reads of releases: what is published, and the one place that decides which files can be downloaded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.core.files.storage import default_storage
from django.db.models import Count, QuerySet, Sum

from benchmark.models import Release, ReleaseFile, ReleaseStatus
from benchmark.releases import exports
from benchmark.releases.exports import ReleaseEntry
from contributors.models import Clip, ClipStatus
from core.errors import ServiceError
from speech.splits import PUBLIC_SPLITS

FORMATS = (
    "manifest", "timit", "kaldi", "lhotse", "hf", "datasheet", "checksums", "delta", "metadata", "package",
)  # fmt: skip


def release_clips_valid() -> QuerySet[Clip]:
    """The clips a release takes: valid, not withdrawn by their author, by a contributor whose CC0 consent stands
    and whose account is not deleted (a deleted account's decided clips keep their status for the trust
    engine, contributors.services.own_data), in a stable order."""
    return (
        Clip.objects.filter(
            status=ClipStatus.VALID,
            withdrawn_at__isnull=True,
            contributor__cc0_consent_at__isnull=False,
            contributor__deleted_at__isnull=True,
        )
        .select_related("contributor", "prompt", "source")
        .order_by("contributor__speaker_id", "prompt_id", "id")
    )


@dataclass(frozen=True)
class HmmSource:
    """A stored monophone HMM a release build can start its aligner from, and whose it is."""

    storage_name: str
    kind: str  # "release" | "training_run"
    name: str  # the release's version or the run's id
    trained_at: datetime


def release_hmm_latest(*, release: Release) -> HmmSource | None:
    """The most recent HMM trained on the platform before ``release`` was created: the newest of the last ready
    release's (the one that aligned it) and the last succeeded training run's (its alignment stage's). Bounded by
    the release's creation, not by now, so that a failed release rebuilt later starts from the same model."""
    from training.models import TrainingRun, TrainingRunStatus

    before = release.created_at
    candidates = []
    previous = (
        Release.objects.filter(status=ReleaseStatus.READY, finished_at__lte=before)
        .exclude(hmm="")
        .exclude(pk=release.pk)
        .order_by("-finished_at", "-id")
        .first()
    )
    # finished_at__lte already leaves out rows without one; the test says so to the type checker too.
    if previous is not None and previous.finished_at is not None:
        candidates.append(HmmSource(previous.hmm, "release", previous.version, previous.finished_at))
    run = (
        TrainingRun.objects.filter(status=TrainingRunStatus.SUCCEEDED, finished_at__lte=before)
        .exclude(hmm="")
        .order_by("-finished_at", "-id")
        .first()
    )
    if run is not None and run.finished_at is not None:
        candidates.append(HmmSource(run.hmm, "training_run", str(run.pk), run.finished_at))
    return max(candidates, key=lambda c: c.trained_at, default=None)


def releases_public() -> QuerySet[Release]:
    return Release.objects.filter(status=ReleaseStatus.READY).order_by("-created_at", "-id")


def release_blind(*, release: Release) -> bool:
    """Whether the release's leaderboard is blind: ranked on a hidden split nobody outside the platform has. A
    release with too few platform speakers for one (``facts["hidden_split"]``) ranks on its public test split,
    which every researcher can download, so its board is marked "not blind". Releases built before the datasheet
    recorded this all had a hidden split."""
    hidden = release.facts.get("hidden_split")
    if hidden is None:
        return True
    return bool(hidden.get("blind", hidden.get("formed", True)))


def _refuse_withdrawn(version: str) -> None:
    """A withdrawn release answers with its own code, so that a client is told why a version it knew is gone."""
    withdrawn = Release.objects.filter(version=version, status=ReleaseStatus.WITHDRAWN).first()
    if withdrawn is not None:
        when = withdrawn.withdrawn_at.date().isoformat() if withdrawn.withdrawn_at else "an earlier date"
        raise ServiceError("release_withdrawn", f"Release {version!r} was withdrawn on {when}.", status_code=404)


def release_public_get(*, version: str) -> Release:
    release = releases_public().filter(version=version).first()
    if release is None:
        _refuse_withdrawn(version)
        raise ServiceError("release_unknown", f"There is no published release {version!r}.", status_code=404)
    return release


def release_files(*, release: Release, split: str | None = None, format: str | None = None) -> QuerySet[ReleaseFile]:
    """Published files of a release, optionally of one public split and one format. A split of a release-wide
    format (the manifest, the datasheet) is refused rather than answered with nothing."""
    files = release.files.all()
    if split and split not in PUBLIC_SPLITS:
        raise ServiceError(
            "split_unknown", f"Split must be one of {', '.join(PUBLIC_SPLITS)}; the hidden split is never published."
        )
    if format and format not in FORMATS:
        raise ServiceError("format_unknown", f"Format must be one of {', '.join(FORMATS)}.")
    if format:
        files = files.filter(format=format)
    if split and format:
        if files.exists() and not files.exclude(split="").exists():
            per_split = release.files.exclude(split="").values_list("format", flat=True).distinct().order_by("format")
            raise ServiceError(
                "format_release_wide",
                f"The {format} format is release-wide (one set of files for every split): ask for it without a "
                f"split, or ask for a split in a per-split format ({', '.join(per_split)}).",
            )
        files = files.filter(split=split)
    elif split:  # the split's files and the release-wide ones, less the whole-release package
        files = files.filter(split__in=[split, ""]).exclude(format="package", split="")
    return files.order_by("path")


def release_file_get(*, version: str, path: str) -> ReleaseFile:
    """A downloadable file: it must have a ReleaseFile row of a ready release. Hidden-split files never get a
    row (they live under ``private/``), so no URL reaches them whatever the path says."""
    found = (
        ReleaseFile.objects.filter(release__version=version, release__status=ReleaseStatus.READY, path=path)
        .select_related("release")
        .first()
    )
    if found is None:
        _refuse_withdrawn(version)
        raise ServiceError("file_unknown", f"Release {version!r} has no published file {path!r}.", status_code=404)
    return found


def release_file_summary(*, release: Release) -> list[dict]:
    """Files and bytes per format and split."""
    rows = release.files.values("format", "split").annotate(files=Count("id"), bytes=Sum("size"))
    return sorted(rows, key=lambda r: (r["format"], r["split"]))


# --- a release's manifests: the one reader of each, for the leaderboard, training and the tests ----------------------
def release_public_entries(*, release: Release) -> list[ReleaseEntry]:
    """The published manifest's clips (train, dev and test), as the release wrote them."""
    return _manifest_entries(release.manifest_path)


def release_hidden_entries(*, release: Release) -> list[ReleaseEntry]:
    """The hidden split's clips, for the leaderboard (server side only); audio paths are relative to
    ``release.private_prefix``."""
    return _manifest_entries(release.hidden_manifest_path)


def _manifest_entries(path: str) -> list[ReleaseEntry]:
    with default_storage.open(path, "rb") as handle:
        return [exports.entry_from_json(json.loads(line)) for line in handle if line.strip()]
