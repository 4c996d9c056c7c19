"""What the public pages show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Sum

from contributors.models import Clip, ClipStatus, Contributor, Prompt


@dataclass(frozen=True)
class CorpusOverview:
    contributors: int
    prompts: int
    clips_by_status: dict[str, int]
    hours_recorded: float
    recent_prompts: list[Prompt]


# The home page's figures are this many seconds old at most: they are four aggregates over every clip, and the
# home page is the page every visitor (and every crawler) hits first.
OVERVIEW_CACHE_SECONDS = 60
_OVERVIEW_KEY = "frontend:corpus_overview:v1"


def corpus_overview() -> CorpusOverview:
    """The corpus in numbers for the home page, from the shared cache (computed at most once a minute)."""
    overview = cache.get_or_set(_OVERVIEW_KEY, _corpus_overview_now, OVERVIEW_CACHE_SECONDS)
    # A cache holds anything; whatever is under the key but a CorpusOverview is computed afresh instead.
    return overview if isinstance(overview, CorpusOverview) else _corpus_overview_now()


def _corpus_overview_now() -> CorpusOverview:
    # Withdrawn clips (one by one or with a deleted account) have no audio left: not part of the corpus.
    clips = Clip.objects.filter(withdrawn_at__isnull=True)
    by_status = {s: 0 for s in ClipStatus.values}
    for row in clips.values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    seconds = clips.aggregate(total=Sum("duration_s"))["total"] or 0.0
    return CorpusOverview(
        contributors=Contributor.objects.filter(clips__withdrawn_at__isnull=True, clips__isnull=False)
        .distinct()
        .count(),
        prompts=Prompt.objects.filter(is_active=True).count(),
        clips_by_status=by_status,
        hours_recorded=round(seconds / 3600.0, 2),
        recent_prompts=list(Prompt.objects.filter(is_active=True).order_by("-id")[:8]),
    )


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Dashboard:
    contributor: Contributor
    clips: list[Clip]
    by_status: dict[str, int]
    status_bars: list[Bar]
    day_bars: list[Bar]
    quota_left: int
    votes_cast: int
    votes_per_clip: float
    chart_height: int = 120


def _bars(items: list[tuple[str, int]], *, width: float, height: float) -> list[Bar]:
    """Bars for an SVG whose plot area is ``width`` x ``height`` with y pointing down."""
    top = max((v for _, v in items), default=0) or 1
    step = width / max(len(items), 1)
    bars = []
    for i, (label, value) in enumerate(items):
        bar_height = height * value / top
        bars.append(Bar(label, value, i * step + step * 0.1, height - bar_height, step * 0.8, bar_height))
    return bars


def dashboard_for(*, contributor: Contributor, days: int = 14) -> Dashboard:
    """A contributor's clips with their counted votes and score, their trust and quota, and the data for
    two charts: clips by status, and clips recorded per day over the last ``days`` days."""
    from django.utils import timezone

    from contributors.conf import trust_params
    from contributors.selectors import clips_of, vote_quota_left

    clips = list(clips_of(contributor=contributor))
    # A withdrawn clip is stored as discarded (it leaves the queue and every future release); the chart names it
    # as the table does.
    by_status = {s: 0 for s in ClipStatus.values} | {"withdrawn": 0}
    for clip in clips:
        by_status["withdrawn" if clip.withdrawn_at else clip.status] += 1
    today = timezone.localdate()
    per_day = {today - timedelta(days=offset): 0 for offset in range(days - 1, -1, -1)}
    for clip in clips:
        day = timezone.localdate(clip.created_at)
        if day in per_day:
            per_day[day] += 1
    return Dashboard(
        contributor=contributor,
        clips=clips,
        by_status=by_status,
        status_bars=_bars(list(by_status.items()), width=320, height=120),
        day_bars=_bars([(str(d.day), n) for d, n in per_day.items()], width=320, height=120),
        quota_left=vote_quota_left(contributor=contributor),
        votes_cast=contributor.votes_cast.count(),
        votes_per_clip=trust_params().votes_per_clip,
    )
