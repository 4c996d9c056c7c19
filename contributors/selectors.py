"""Reads of the contributors' data (HackSoft: selectors)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, QuerySet, Value, When
from django.utils import timezone

from contributors.conf import trust_params
from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipSkip,
    ClipStatus,
    Contributor,
    Prompt,
    PromptType,
    ValidationAssignment,
    Vote,
    new_queue_key,
)
from contributors.trust import vote_quota


def prompts_next_for(*, contributor: Contributor, count: int = 5) -> list[Prompt]:
    """Active prompts this contributor has not recorded: shared sentences first (everyone reads those,
    as in TIMIT's SA set), then the least-recorded, ties broken at random."""
    return list(
        Prompt.objects.filter(is_active=True)
        .exclude(clips__contributor=contributor)
        .annotate(
            n_clips=Count("clips"),
            shared_first=Case(
                When(prompt_type=PromptType.SHARED, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        )
        .order_by("shared_first", "n_clips", "?")[:count]
    )


def clips_of(*, contributor: Contributor) -> QuerySet[Clip]:
    return (
        Clip.objects.filter(contributor=contributor)
        .select_related("prompt")
        .annotate(n_votes=Count("votes"))
        .order_by("-created_at")
    )


def clip_visible_to(*, clip_id: int, contributor: Contributor | None, is_staff: bool) -> Clip | None:
    """A clip whose details and audio this person may see: their own; a pending clip assigned to them now
    (validation); any for staff. Nobody else, so that walking ids reveals nothing."""
    clip = Clip.objects.filter(pk=clip_id).select_related("contributor", "prompt").first()
    if clip is None:
        return None
    if is_staff:
        return clip
    if contributor is None:
        return None
    if clip.contributor_id == contributor.pk:
        return clip
    if clip.status == ClipStatus.PENDING and _assigned_now(clip=clip, trustee=contributor):
        return clip
    return None


def _assigned_now(*, clip: Clip, trustee: Contributor) -> bool:
    return ValidationAssignment.objects.filter(
        clip=clip, trustee=trustee, outcome=AssignmentOutcome.OPEN, expires_at__gt=timezone.now()
    ).exists()


def vote_quota_left(*, contributor: Contributor) -> int:
    """Votes left: the preset's votes per clip submitted, plus the operator's allowance, minus votes cast."""
    return vote_quota(
        clips_submitted=contributor.clips.count(),
        votes_cast=Vote.objects.filter(voter=contributor).count(),
        allowance=contributor.vote_allowance,
        params=trust_params(),
    )


_PICK_AMONG = 8  # clips read at a random point of the queue, of which one is drawn


def validation_next_for(*, contributor: Contributor, now: datetime | None = None) -> Clip | None:
    """A random pending clip this trustee may judge: not theirs, not voted on, skipped or reported by them,
    not held by another trustee's open assignment, and not contested past ``offer_max_votes`` counted votes
    (contributors/trust.py says why).

    Random among the eligible clips with the most counted votes: a clip needs six unanimous trustee votes,
    and uniformly random assignment spreads a small trustee pool's quota so thin over a growing backlog that
    almost nothing gets decided (benchmarks/trust_sim.py measured it). Finishing started clips first keeps
    the choice the server's and unpredictable to a voter, and decides clips sooner; one holder at a time
    keeps a clip from collecting more votes than it needs.

    Two index walks on (status, votes_counted, queue_key), no sort: the highest count that has an eligible
    clip, then the next few eligible clips at that count from a random point of the clips' random keys
    (wrapping round), one of which is drawn uniformly. A level of up to ``_PICK_AMONG`` clips is drawn from
    exactly uniformly; in a larger one a clip's chance also follows the gap before its key, which the draw
    among several evens out: random and unpredictable to the voter, if not exactly uniform. Clips are locked
    as they are picked, and a clip another trustee is being handed right now is skipped, so two trustees
    asking at once get different clips (PostgreSQL)."""
    now = now or timezone.now()
    eligible = (
        Clip.objects.filter(status=ClipStatus.PENDING, votes_counted__lt=trust_params().offer_max_votes)
        .exclude(contributor=contributor)
        .exclude(Exists(Vote.objects.filter(clip=OuterRef("pk"), voter=contributor)))
        .exclude(Exists(ClipSkip.objects.filter(clip=OuterRef("pk"), contributor=contributor)))
        .exclude(Exists(ClipReport.objects.filter(clip=OuterRef("pk"), reporter=contributor)))
        .exclude(
            Exists(
                ValidationAssignment.objects.filter(
                    clip=OuterRef("pk"), outcome=AssignmentOutcome.OPEN, expires_at__gt=now
                ).exclude(trustee=contributor)
            )
        )
    )
    top = eligible.order_by("-votes_counted").values_list("votes_counted", flat=True).first()
    if top is None:
        return None
    locking = eligible.select_related("prompt").select_for_update(skip_locked=True, of=("self",))
    level = locking.filter(votes_counted=top)
    start = new_queue_key()
    candidates = list(level.filter(queue_key__gte=start).order_by("queue_key")[:_PICK_AMONG])
    if len(candidates) < _PICK_AMONG:  # wrap round to the smallest keys
        candidates += level.filter(queue_key__lt=start).order_by("queue_key")[: _PICK_AMONG - len(candidates)]
    if not candidates:
        # Every clip at that count is being handed to someone else right now: the next most-voted ones.
        candidates = list(locking.order_by("-votes_counted", "queue_key")[:_PICK_AMONG])
        candidates = [clip for clip in candidates if clip.votes_counted == candidates[0].votes_counted]
    return secrets.choice(candidates) if candidates else None


@dataclass(frozen=True)
class TrustExplanation:
    """What gives a contributor their trust: their clips' statuses and the formula's reading of them."""

    summary: str
    clips: list[Clip]  # their own clips, decided first
    votes_cast: int
    votes_on_valid: int
    quota_left: int


def trust_explanation(*, contributor: Contributor) -> TrustExplanation:
    params = trust_params()
    clips = list(
        Clip.objects.filter(contributor=contributor, status_fixed=False).order_by(
            Case(When(status=ClipStatus.PENDING, then=Value(1)), default=Value(0), output_field=IntegerField()), "id"
        )
    )
    counts = {status: sum(clip.status == status for clip in clips) for status in ClipStatus.values}
    valid, invalid, discarded = counts["valid"], counts["invalid"], counts["discarded"]
    if contributor.is_founding_trustee:
        summary = "A founding trustee: trust 1 whatever their clips."
    elif params.preset == "proposal":
        formula = f"max(0, (valid {valid} - invalid {invalid}) / clips {len(clips)})"
        summary = f"Proposal preset: {formula} = {contributor.trust:.3f}"
    else:
        summary = (
            f"Wilson lower bound of {valid} valid among {valid + invalid + discarded} decided clips (invalid "
            f"{invalid}, discarded {discarded}; {counts['pending']} pending do not count) = {contributor.trust:.3f}"
        )
    verdict = "a trustee" if contributor.is_trustee else "not a trustee"
    summary += f"; {verdict} (trustees need more than {params.min_trust:g}, or to be founders)."
    votes = Vote.objects.filter(voter=contributor)
    return TrustExplanation(
        summary=summary,
        clips=clips,
        votes_cast=votes.count(),
        votes_on_valid=votes.filter(clip__status=ClipStatus.VALID).count(),
        quota_left=vote_quota_left(contributor=contributor),
    )
