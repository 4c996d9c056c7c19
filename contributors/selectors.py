"""Reads of the contributors' data (HackSoft: selectors)."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, QuerySet, Value, When

from contributors.models import Clip, ClipStatus, Contributor, Prompt, PromptType, Vote


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
    """A clip whose audio this person may hear: their own; a pending one for a trustee; any for staff."""
    clip = Clip.objects.filter(pk=clip_id).select_related("contributor", "prompt").first()
    if clip is None:
        return None
    if is_staff:
        return clip
    if contributor is not None and clip.contributor_id == contributor.pk:
        return clip
    if contributor is not None and contributor.is_trustee and clip.status == ClipStatus.PENDING:
        return clip
    return None


def vote_quota_left(*, contributor: Contributor) -> int:
    """A trustee casts at most as many votes as clips they have submitted."""
    return max(0, contributor.clips.count() - Vote.objects.filter(voter=contributor).count())


def validation_next_for(*, contributor: Contributor) -> Clip | None:
    """A random pending clip this trustee did not record, has not voted on, skipped or reported.

    Random among the eligible clips with the most counted votes: a clip needs six unanimous trustee
    votes, and uniformly random assignment spreads a small trustee pool's quota so thin over a growing
    backlog that almost nothing gets decided (benchmarks/trust_sim.py measured it). Finishing started
    clips first keeps the choice the server's and unpredictable to a voter, and decides clips sooner."""
    return (
        Clip.objects.filter(status=ClipStatus.PENDING)
        .exclude(contributor=contributor)
        .exclude(votes__voter=contributor)
        .exclude(skips__contributor=contributor)
        .exclude(reports__reporter=contributor)
        .select_related("prompt")
        .order_by("-votes_counted", "?")
        .first()
    )
