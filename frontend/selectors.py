"""What the public pages show."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Sum

from contributors.models import Clip, ClipStatus, Contributor, Prompt


@dataclass(frozen=True)
class CorpusOverview:
    contributors: int
    prompts: int
    clips_by_status: dict[str, int]
    hours_recorded: float
    recent_prompts: list[Prompt]


def corpus_overview() -> CorpusOverview:
    by_status = {s: 0 for s in ClipStatus.values}
    for row in Clip.objects.values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    seconds = Clip.objects.aggregate(total=Sum("duration_s"))["total"] or 0.0
    return CorpusOverview(
        contributors=Contributor.objects.filter(clips__isnull=False).distinct().count(),
        prompts=Prompt.objects.filter(is_active=True).count(),
        clips_by_status=by_status,
        hours_recorded=round(seconds / 3600.0, 2),
        recent_prompts=list(Prompt.objects.filter(is_active=True).order_by("-id")[:8]),
    )
