"""Reads of a contributor's progress: their latest clips on their way through validation, and the seconds of
their recordings validated each week against a weekly goal (with the streak of weeks that met it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from contributors.conf import trust_params
from contributors.models import Clip, ClipStatus, Contributor
from speech.trust import TrustParams, wilson_lower_bound

# A minute of validated speech a week: about fifteen sentences, three sets of five: a habit a volunteer can
# keep in ten minutes a week. Counted in seconds of validated audio, not in clicks or takes, so that the goal
# rewards what the corpus needs.
WEEKLY_GOAL_S = 60.0
RECENT_CLIPS = 15  # three sets of five: what the record page follows live
STREAK_WEEKS = 52  # the streak is counted over at most this many weeks back


@dataclass(frozen=True)
class WeekGoal:
    week_start: date  # Monday of the current week, in the site's time zone
    validated_s: float  # seconds of this week's recordings that are valid now
    goal_s: float
    streak_weeks: int  # weeks in a row, up to this week (or last week, if this one is not met yet), at goal


@dataclass(frozen=True)
class Progress:
    clips: list[Clip]  # the latest clips, newest first, with their prompts
    votes_needed: int  # unanimous counted votes that make a clip valid under the current parameters
    week: WeekGoal


def votes_to_validate(params: TrustParams) -> int:
    """The fewest unanimous counted votes whose Wilson bound exceeds ``min_trust`` (6 at the defaults)."""
    n = max(params.min_votes, 1)
    while wilson_lower_bound(n, n, params.z) <= params.min_trust:
        n += 1
    return n


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_goal_of(*, contributor: Contributor, now: datetime | None = None) -> WeekGoal:
    """Seconds of valid clips per week recorded (one aggregate statement), this week's against the goal, and the
    streak. A week counts the clips recorded in it that are valid now: it grows as validation catches up."""
    today = timezone.localdate(now or timezone.now())
    this_week = _monday(today)
    since = this_week - timedelta(weeks=STREAK_WEEKS)
    rows = (
        Clip.objects.filter(
            contributor=contributor,
            status=ClipStatus.VALID,
            withdrawn_at__isnull=True,
            created_at__date__gte=since,
        )
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(seconds=Sum("duration_s"))
        .order_by()
    )
    per_week = {_week_date(row["week"]): float(row["seconds"] or 0.0) for row in rows}
    streak = 0
    week = this_week if per_week.get(this_week, 0.0) >= WEEKLY_GOAL_S else this_week - timedelta(weeks=1)
    while per_week.get(week, 0.0) >= WEEKLY_GOAL_S:
        streak += 1
        week -= timedelta(weeks=1)
    return WeekGoal(
        week_start=this_week,
        validated_s=round(per_week.get(this_week, 0.0), 1),
        goal_s=WEEKLY_GOAL_S,
        streak_weeks=streak,
    )


def _week_date(value: date | datetime) -> date:
    # TruncWeek gives a datetime in the current time zone on a DateTimeField (a date on some backends).
    return timezone.localtime(value).date() if isinstance(value, datetime) else value


def progress_of(*, contributor: Contributor, now: datetime | None = None) -> Progress:
    """What the record page and the dashboard follow live: two statements whatever the number of clips."""
    clips = list(
        Clip.objects.filter(contributor=contributor, withdrawn_at__isnull=True)
        .select_related("prompt")
        .order_by("-created_at", "-id")[:RECENT_CLIPS]
    )
    return Progress(
        clips=clips,
        votes_needed=votes_to_validate(trust_params()),
        week=week_goal_of(contributor=contributor, now=now),
    )
