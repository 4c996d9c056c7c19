"""The trust engine applied to the database: full recompute, the incremental path after a vote, founders.

Every trust write happens under one lock (a PostgreSQL advisory lock; SQLite's IMMEDIATE transactions
already serialise writers), so a vote's incremental update and a full recompute never interleave.

The incremental path re-scores the voted clip; if its status changes it recomputes the author's trust; if
the author's trustee status flips, the votes they cast start or stop counting on many clips, and the
fixed point from the founders may move as a whole, so that case runs the full recompute (still a fraction
of a second for a community's worth of votes). Either way the database ends where a full recompute from
scratch would put it, which the property tests check after random sequences of votes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Q

from contributors.conf import trust_params
from contributors.models import Clip, ClipStatus, Contributor, TrustRecompute, Verdict, Vote
from contributors.trust import (
    NO_AUTHOR,
    NO_FIXED_STATUS,
    TrustResult,
    clip_outcome,
    contributor_is_trustee,
    contributor_trust,
    trust_recompute,
)
from contributors.trust import ClipStatus as Code
from core.errors import ServiceError

_STATUS_CODE = {
    ClipStatus.PENDING: Code.PENDING,
    ClipStatus.VALID: Code.VALID,
    ClipStatus.INVALID: Code.INVALID,
    ClipStatus.DISCARDED: Code.DISCARDED,
}
_CODE_STATUS = {int(code): status for status, code in _STATUS_CODE.items()}
_LOCK_KEY = 0x7472757374  # "trust"


def trust_lock() -> None:
    """Serialise trust writes until the surrounding transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


# --- the full recompute ---------------------------------------------------------------------------


@dataclass
class TrustSnapshot:
    """The database as the engine's arrays, with the ids to map results back."""

    contributor_ids: np.ndarray
    founders: np.ndarray
    clip_ids: np.ndarray
    clip_author: np.ndarray
    clip_fixed: np.ndarray
    vote_clip: np.ndarray
    vote_voter: np.ndarray
    vote_valid: np.ndarray

    def run(self) -> TrustResult:
        return trust_recompute(
            vote_clip=self.vote_clip,
            vote_voter=self.vote_voter,
            vote_valid=self.vote_valid,
            clip_author=self.clip_author,
            founders=self.founders,
            clip_fixed=self.clip_fixed,
            params=trust_params(),
        )


def trust_snapshot() -> TrustSnapshot:
    """Load contributors, clips and votes in bulk (three queries) as index arrays."""
    contributors = np.array(
        list(Contributor.objects.order_by("id").values_list("id", "is_founding_trustee")), dtype=np.int64
    ).reshape(-1, 2)
    clips = list(Clip.objects.order_by("id").values_list("id", "contributor_id", "status", "status_fixed"))
    votes = np.array(list(Vote.objects.values_list("clip_id", "voter_id", "verdict")), dtype=object).reshape(-1, 3)
    contributor_ids = contributors[:, 0]
    clip_ids = np.array([c[0] for c in clips], dtype=np.int64)
    authors = np.searchsorted(contributor_ids, np.array([c[1] for c in clips], dtype=np.int64))
    fixed = np.array([bool(c[3]) for c in clips], dtype=bool)
    # A clip with a fixed (imported) status has no author in the engine's eyes: a curated corpus's
    # speakers did not earn trust on the platform, and must not become trustees through it.
    clip_author = np.where(fixed, NO_AUTHOR, authors).astype(np.int64)
    clip_fixed = np.array([int(_STATUS_CODE[c[2]]) if c[3] else NO_FIXED_STATUS for c in clips], dtype=np.int64)
    return TrustSnapshot(
        contributor_ids=contributor_ids,
        founders=contributors[:, 1].astype(bool),
        clip_ids=clip_ids,
        clip_author=clip_author,
        clip_fixed=clip_fixed,
        vote_clip=np.searchsorted(clip_ids, votes[:, 0].astype(np.int64)),
        vote_voter=np.searchsorted(contributor_ids, votes[:, 1].astype(np.int64)),
        vote_valid=votes[:, 2] == Verdict.VALID,
    )


@dataclass
class TrustRecomputeSummary:
    clips_changed: int = 0
    status_changes: Counter = field(default_factory=Counter)  # (old, new) -> clips
    contributors_changed: int = 0
    trustees_gained: int = 0
    trustees_lost: int = 0
    trustees: int = 0
    iterations: int = 0
    cycle_resolved: bool = False
    capped: bool = False
    seconds: float = 0.0


def trust_recompute_all(*, trigger: str = "command") -> TrustRecomputeSummary:
    """Recompute every status and trust from all the votes and write back only what changed."""
    started = time.perf_counter()
    with transaction.atomic():
        trust_lock()
        summary = _recompute_locked()
        summary.seconds = time.perf_counter() - started
        TrustRecompute.objects.create(
            seconds=summary.seconds,
            iterations=summary.iterations,
            cycle_resolved=summary.cycle_resolved,
            capped=summary.capped,
            clips_changed=summary.clips_changed,
            contributors_changed=summary.contributors_changed,
            trustees=summary.trustees,
            trigger=trigger,
        )
    return summary


def _recompute_locked() -> TrustRecomputeSummary:
    snapshot = trust_snapshot()
    result = snapshot.run()
    summary = TrustRecomputeSummary(
        iterations=result.iterations,
        cycle_resolved=result.cycle_resolved,
        capped=result.capped,
        trustees=int(result.trustees.sum()),
    )
    new_clip = {
        int(pk): (_CODE_STATUS[int(status)], float(score), int(counted), int(valid))
        for pk, status, score, counted, valid in zip(
            snapshot.clip_ids,
            result.clip_status,
            result.clip_score,
            result.clip_counted,
            result.clip_valid_counted,
            strict=True,
        )
    }
    changed_clips = []
    for clip in Clip.objects.only("id", "status", "score", "votes_counted", "votes_valid_counted").iterator(
        chunk_size=5000
    ):
        status, score, counted, valid = new_clip[clip.pk]
        if (clip.status, clip.score, clip.votes_counted, clip.votes_valid_counted) != (status, score, counted, valid):
            if clip.status != status:
                summary.status_changes[(clip.status, status)] += 1
            clip.status, clip.score, clip.votes_counted, clip.votes_valid_counted = status, score, counted, valid
            changed_clips.append(clip)
    Clip.objects.bulk_update(
        changed_clips, ["status", "score", "votes_counted", "votes_valid_counted"], batch_size=2000
    )
    summary.clips_changed = len(changed_clips)

    new_contributor = {
        int(pk): (float(trust), bool(trustee))
        for pk, trust, trustee in zip(snapshot.contributor_ids, result.contributor_trust, result.trustees, strict=True)
    }
    changed_contributors = []
    for contributor in Contributor.objects.only("id", "trust", "is_trustee").iterator(chunk_size=5000):
        trust, trustee = new_contributor[contributor.pk]
        if (contributor.trust, contributor.is_trustee) != (trust, trustee):
            summary.trustees_gained += int(trustee and not contributor.is_trustee)
            summary.trustees_lost += int(contributor.is_trustee and not trustee)
            contributor.trust, contributor.is_trustee = trust, trustee
            changed_contributors.append(contributor)
    Contributor.objects.bulk_update(changed_contributors, ["trust", "is_trustee"], batch_size=2000)
    summary.contributors_changed = len(changed_contributors)
    return summary


# --- the incremental path -------------------------------------------------------------------------


def trust_after_vote(*, clip: Clip) -> None:
    """Bring statuses and trust up to date after a vote on ``clip``; call inside the vote's transaction
    with the trust lock held."""
    if not _clip_rescore(clip) or clip.status_fixed:
        return
    author = Contributor.objects.select_for_update().get(pk=clip.contributor_id)
    if _contributor_retrust(author):
        _recompute_locked()


def trust_after_submission(*, contributor: Contributor) -> None:
    """A new clip counts in its author's total at once (the proposal's rule), diluting their trust until it
    is validated; a trustee may lose the status by recording. Call inside the upload's transaction."""
    trust_lock()
    author = Contributor.objects.select_for_update().get(pk=contributor.pk)
    if _contributor_retrust(author):
        _recompute_locked()


def _clip_rescore(clip: Clip) -> bool:
    """Recount the trustees' votes on one clip; returns whether its status changed."""
    counts = Vote.objects.filter(clip=clip, voter__is_trustee=True).aggregate(
        valid=Count("id", filter=Q(verdict=Verdict.VALID)), invalid=Count("id", filter=Q(verdict=Verdict.INVALID))
    )
    fixed = int(_STATUS_CODE[clip.status]) if clip.status_fixed else NO_FIXED_STATUS
    outcome = clip_outcome(counts["valid"], counts["invalid"], trust_params(), fixed_status=fixed)
    status = _CODE_STATUS[int(outcome.status)]
    changed = status != clip.status
    clip.status, clip.score = status, outcome.score
    clip.votes_counted, clip.votes_valid_counted = outcome.counted, counts["valid"]
    clip.save(update_fields=["status", "score", "votes_counted", "votes_valid_counted", "updated_at"])
    return changed


def _contributor_retrust(contributor: Contributor) -> bool:
    """Recompute one contributor's trust from their clips' statuses; returns whether trustee status flipped."""
    counts = Clip.objects.filter(contributor=contributor, status_fixed=False).aggregate(
        valid=Count("id", filter=Q(status=ClipStatus.VALID)),
        invalid=Count("id", filter=Q(status=ClipStatus.INVALID)),
        total=Count("id"),
    )
    trust = contributor_trust(counts["valid"], counts["invalid"], counts["total"], contributor.is_founding_trustee)
    trustee = contributor_is_trustee(trust, contributor.is_founding_trustee, trust_params())
    flipped = trustee != contributor.is_trustee
    if (trust, trustee) != (contributor.trust, contributor.is_trustee):
        contributor.trust, contributor.is_trustee = trust, trustee
        contributor.save(update_fields=["trust", "is_trustee"])
    return flipped


# --- founders -------------------------------------------------------------------------------------


def founders_set(*, usernames: list[str], founding: bool) -> list[Contributor]:
    """Name or remove founding trustees, then recompute: their votes start or stop counting everywhere."""
    with transaction.atomic():
        trust_lock()
        contributors = list(Contributor.objects.select_related("user").filter(user__username__in=usernames))
        missing = sorted(set(usernames) - {c.user.username for c in contributors})
        if missing:
            raise ServiceError("contributor_unknown", f"No contributor with the username: {', '.join(missing)}.")
        for contributor in contributors:
            contributor.is_founding_trustee = founding
            contributor.save(update_fields=["is_founding_trustee"])
        summary = _recompute_locked()
        TrustRecompute.objects.create(
            seconds=0.0,
            iterations=summary.iterations,
            cycle_resolved=summary.cycle_resolved,
            capped=summary.capped,
            clips_changed=summary.clips_changed,
            contributors_changed=summary.contributors_changed,
            trustees=summary.trustees,
            trigger="founders",
        )
    for contributor in contributors:
        contributor.refresh_from_db()
    return contributors
