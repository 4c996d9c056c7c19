"""Reads of the contributors' data (HackSoft: selectors)."""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, QuerySet, Value, When

from contributors.models import Clip, Contributor, Prompt, PromptType


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
    """A clip whose audio this person may hear: their own, or any for staff (trustees come later)."""
    clip = Clip.objects.filter(pk=clip_id).select_related("contributor").first()
    if clip is None:
        return None
    if is_staff or (contributor is not None and clip.contributor_id == contributor.pk):
        return clip
    return None
