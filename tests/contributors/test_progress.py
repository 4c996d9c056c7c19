"""A contributor's progress: their latest clips through validation and this week's validated seconds against the
goal, with the streak (contributors.progress, /api/v1/me/progress); and the one-time notice of trustee status."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from contributors.conf import trust_params
from contributors.models import Clip, ClipStatus
from contributors.progress import RECENT_CLIPS, WEEKLY_GOAL_S, votes_to_validate, week_goal_of
from speech.trust import TrustParams
from tests.contributors.test_lean_reads import _clip
from tests.factories import ContributorFactory, FounderFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.get_fixed_timezone(0))  # a Thursday


def _recorded(contributor, *, weeks_ago: int, seconds: float, status: str = ClipStatus.VALID) -> Clip:
    clip = _clip(contributor, duration_s=seconds, status=status)
    Clip.objects.filter(pk=clip.pk).update(created_at=NOW - timedelta(weeks=weeks_ago))  # auto_now_add
    return clip


def test_the_votes_a_clip_needs_follow_the_trust_parameters():
    assert votes_to_validate(trust_params()) == 6  # DESIGN.md: n = 5 gives 0.566, n = 6 gives 0.610
    assert votes_to_validate(TrustParams(min_votes=9)) == 9
    assert votes_to_validate(TrustParams(min_trust=0.3)) == 2  # n = 1 gives 0.207, n = 2 gives 0.342


def test_the_week_counts_validated_seconds_not_clips_and_the_streak_counts_weeks_at_goal():
    me = ContributorFactory()
    _recorded(me, weeks_ago=0, seconds=14.5)
    _recorded(me, weeks_ago=0, seconds=9.0, status=ClipStatus.PENDING)  # not validated (yet): not counted
    _recorded(me, weeks_ago=0, seconds=8.0, status=ClipStatus.INVALID)
    for weeks_ago in (1, 2):  # two weeks at goal, then a gap, then another week at goal
        _recorded(me, weeks_ago=weeks_ago, seconds=WEEKLY_GOAL_S)
    _recorded(me, weeks_ago=4, seconds=WEEKLY_GOAL_S + 5)
    _recorded(ContributorFactory(), weeks_ago=0, seconds=WEEKLY_GOAL_S)  # someone else's

    week = week_goal_of(contributor=me, now=NOW)

    assert week.week_start.isoformat() == "2026-11-30"  # the Monday
    assert (week.validated_s, week.goal_s) == (14.5, WEEKLY_GOAL_S)
    assert week.streak_weeks == 2  # this week is not at goal yet: the streak up to last week stands

    _recorded(me, weeks_ago=0, seconds=WEEKLY_GOAL_S)
    assert week_goal_of(contributor=me, now=NOW).streak_weeks == 3  # this week joins it


def test_progress_lists_the_latest_clips_with_their_votes_in_a_fixed_number_of_statements(django_assert_num_queries):
    me = ContributorFactory()
    client = APIClient()
    client.force_authenticate(me.user)
    old = _clip(me)
    latest = _clip(me, votes_counted=2, votes_valid_counted=1)
    withdrawn = _clip(me, withdrawn_at=timezone.now())
    with django_assert_num_queries(2):  # the clips with their prompts; the weekly aggregate
        few = client.get("/api/v1/me/progress").json()
    assert [c["id"] for c in few["clips"]] == [latest.pk, old.pk]  # newest first; the withdrawn one is gone
    assert withdrawn.pk not in [c["id"] for c in few["clips"]]
    assert few["clips"][0] | {"created_at": None} == {
        "id": latest.pk,
        "prompt_text": latest.prompt.text,
        "status": "pending",
        "votes_counted": 2,
        "votes_valid_counted": 1,
        "duration_s": 2.0,
        "created_at": None,
    }
    assert few["votes_needed"] == 6 and few["week"]["goal_s"] == WEEKLY_GOAL_S
    for _ in range(RECENT_CLIPS + 5):
        _clip(me)
    with django_assert_num_queries(2):
        many = client.get("/api/v1/me/progress").json()
    assert len(many["clips"]) == RECENT_CLIPS


def test_progress_needs_a_login():
    response = APIClient().get("/api/v1/me/progress")

    assert response.status_code in (401, 403) and set(response.json()) >= {"code", "message"}


def test_a_new_trustee_is_told_once_and_shown_how_to_validate():
    me = ContributorFactory(is_trustee=False)
    browser = Client()
    browser.force_login(me.user)
    assert "You are now a trustee" not in browser.get("/dashboard/").content.decode()

    me.is_trustee, me.trust = True, 0.61  # as the trust engine leaves a contributor it promotes
    me.save(update_fields=["is_trustee", "trust"])
    shown = timezone.now()
    first = browser.get("/record/").content.decode()
    again = browser.get("/dashboard/").content.decode()

    assert "You are now a trustee" in first and 'href="/validate/">Start validating' in first
    assert "You are now a trustee" not in again  # once, persisted
    me.refresh_from_db()
    assert shown <= me.trustee_notice_at <= timezone.now()  # recorded when the first page told them
    founder = FounderFactory()
    browser.force_login(founder.user)
    assert "You are now a trustee" in browser.get("/validate/").content.decode()  # founders are told too
