"""Reads of the leaderboard: one row per succeeded submission on a release, sortable, exportable, plottable.

A release with a hidden split has a blind board, ranked on the hidden split's PER. One without (fewer than 5
speakers recorded on the platform) ranks on its public test split, which anyone can download: its board says so
everywhere it is shown (``Board.blind`` and ``Board.note``; a ``blind`` column in every row and the CSV).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.db.models import F, QuerySet

from benchmark.models import Release, ReleaseStatus, SubmissionResult
from benchmark.releases.selectors import release_blind
from core.errors import ServiceError

SORTS = ("per_hidden", "per_public", "parameters", "depth", "macs_per_second", "rtf_median", "created_at")
DEFAULT_SORT = "per_hidden"
NOT_BLIND_SORT = "per_public"
# The CSV's columns. ``substitutions`` to ``reference_phones`` count the ranked split (``scored_on``): the hidden
# split on a blind board, the public test split on a board that is not blind.
COLUMNS = (
    "rank", "name", "submitter", "is_baseline", "url", "decoder", "blind", "scored_on", "per_hidden",
    "substitutions", "deletions", "insertions", "reference_phones", "per_public", "parameters", "depth",
    "macs_per_second", "rtf_median", "rtf_min", "rtf_max", "submitted_at", "release",
)  # fmt: skip
BLIND_NOTE = "ranked on the hidden test split, which is never published."
NOT_BLIND_NOTE = (
    "release {version} has fewer than {minimum} speakers recorded on the platform, too few for a hidden test split, "
    "so this board ranks on the public test split, which anyone can download (and tune on). Its numbers are not "
    "comparable with a blind board's."
)


@dataclass(frozen=True)
class Board:
    """One release's board as every interface shows it (the API's JSON, the CSV, the page)."""

    release: Release | None
    blind: bool
    sort: str
    rows: list[dict]

    @property
    def scored_on(self) -> str:
        """The split the board ranks on: ``hidden`` or the public ``test``."""
        return "hidden" if self.blind else "test"

    @property
    def ranked_by(self) -> str:
        return "per_hidden" if self.blind else "per_public"

    @property
    def label(self) -> str:
        return "Blind" if self.blind else "Not blind"

    @property
    def explanation(self) -> str:
        if self.blind:
            return BLIND_NOTE
        facts = self.release.facts.get("hidden_split", {}) if self.release else {}
        version = self.release.version if self.release else ""
        return NOT_BLIND_NOTE.format(version=version, minimum=facts.get("min_speakers", 5))

    @property
    def note(self) -> str:
        return f"{self.label}: {self.explanation}"


def leaderboard_board(*, version: str | None = None, sort: str | None = None) -> Board:
    """The board of the named ready release (default the latest), sorted by ``sort`` (default its ranked PER:
    hidden on a blind board, public test on one that is not). 404 ``release_unknown``, 400 ``sort_unknown``."""
    release = leaderboard_release(version=version)
    blind = release is None or release_blind(release=release)
    sort = sort or (DEFAULT_SORT if blind else NOT_BLIND_SORT)
    rows = leaderboard_rows(release=release, sort=sort)
    for row in rows:
        row["blind"], row["scored_on"] = blind, "hidden" if blind else "test"
    return Board(release=release, blind=blind, sort=sort, rows=rows)


def leaderboard_release(*, version: str | None = None) -> Release | None:
    """The named ready release, or the latest one; None when nothing is released yet."""
    releases = Release.objects.filter(status=ReleaseStatus.READY).order_by("-created_at", "-id")
    if not version:
        return releases.first()
    release = releases.filter(version=version).first()
    if release is None:
        raise ServiceError("release_unknown", f"There is no published release {version!r}.", status_code=404)
    return release


def leaderboard_results(*, release: Release | None, sort: str = DEFAULT_SORT) -> QuerySet[SubmissionResult]:
    """Succeeded results on ``release``, sorted by ``sort`` (a column, ``-`` for descending), unknowns last."""
    field = (sort or DEFAULT_SORT).lstrip("-")
    if field not in SORTS:
        raise ServiceError("sort_unknown", f"Sort must be one of {', '.join(SORTS)}, optionally with a leading '-'.")
    if release is None:
        return SubmissionResult.objects.none()
    column = "submission__created_at" if field == "created_at" else field
    order = F(column).desc(nulls_last=True) if sort.startswith("-") else F(column).asc(nulls_last=True)
    return (
        SubmissionResult.objects.filter(release=release, succeeded=True)
        .select_related("submission__submitter", "release")
        .order_by(order, "submission__created_at", "id")
    )


def leaderboard_row(result: SubmissionResult, rank: int) -> dict:
    submission = result.submission
    return {
        "rank": rank,
        "submission_id": submission.pk,
        "name": submission.name,
        "description": submission.description,
        "submitter": submission.submitter.get_username(),
        "is_baseline": submission.is_baseline,
        "url": submission.url,
        "decoder": submission.decoder,
        "per_hidden": result.per_hidden,
        "substitutions": result.substitutions,
        "deletions": result.deletions,
        "insertions": result.insertions,
        "reference_phones": result.reference_phones,
        "per_public": result.per_public,
        "parameters": result.parameters,
        "depth": result.depth,
        "macs_per_second": result.macs_per_second,
        "rtf_median": result.rtf_median,
        "rtf_min": result.rtf_min,
        "rtf_max": result.rtf_max,
        "submitted_at": submission.created_at.isoformat(),
        "release": result.release.version,
    }


def leaderboard_rows(*, release: Release | None, sort: str = DEFAULT_SORT) -> list[dict]:
    return [leaderboard_row(r, i) for i, r in enumerate(leaderboard_results(release=release, sort=sort), 1)]


# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value):
    """A text cell that a spreadsheet would read as a formula gets a leading ``'``; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def leaderboard_csv(rows: list[dict]) -> str:
    """Text columns are neutralised against formula injection; numbers (a negative one too) stay numbers."""
    buffer = io.StringIO()
    # RFC 4180's CRLF: with "\r" in the line terminator, a cell holding a carriage return is quoted too.
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: csv_safe(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()
