"""The trust engine on the database: full recompute, the incremental path, founders, the commands."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contributors.models import Clip, ClipStatus, Contributor, TrustRecompute, Vote
from contributors.services.clips import clip_submit
from contributors.services.trust import _CODE_STATUS, trust_recompute_all, trust_snapshot
from contributors.services.votes import vote_cast
from core.errors import ServiceError
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

_AUDIO = [wav_bytes(speechlike(1.1, seed=s)) for s in range(120)]
_next_audio = itertools.count()  # consecutive clips differ; each test rolls its clips back


def record(contributor, n: int = 1) -> list[Clip]:
    return [
        clip_submit(contributor=contributor, prompt_id=PromptFactory().pk, data=_AUDIO[next(_next_audio) % 119]).clip
        for _ in range(n)
    ]


def assert_database_equals_a_full_recompute() -> None:
    snapshot = trust_snapshot()
    result = snapshot.run()
    clips = {c.pk: c for c in Clip.objects.all()}
    for pk, status, score, counted in zip(
        snapshot.clip_ids, result.clip_status, result.clip_score, result.clip_counted, strict=True
    ):
        clip = clips[int(pk)]
        assert (clip.status, clip.votes_counted) == (_CODE_STATUS[int(status)], int(counted)), clip.pk
        assert clip.score == float(score)
    contributors = {c.pk: c for c in Contributor.objects.all()}
    for pk, trust, trustee in zip(snapshot.contributor_ids, result.contributor_trust, result.trustees, strict=True):
        assert (contributors[int(pk)].trust, contributors[int(pk)].is_trustee) == (float(trust), bool(trustee))


def test_recompute_writes_only_what_changed_and_logs_itself():
    founders = [FounderFactory(is_trustee=False, trust=0.0) for _ in range(2)]
    first = trust_recompute_all()
    second = trust_recompute_all()

    assert first.contributors_changed == 2 and first.trustees_gained == 2
    assert second.clips_changed == second.contributors_changed == 0
    assert TrustRecompute.objects.count() == 2
    assert all(Contributor.objects.get(pk=f.pk).is_trustee for f in founders)


def test_a_trustee_who_falls_below_min_trust_stops_counting_and_dependent_clips_return_to_pending():
    founders = [FounderFactory() for _ in range(6)]
    for f in founders:
        record(f, 4)
    rising = ContributorFactory()
    good = record(rising)[0]
    for f in founders:  # six unanimous votes: valid, so rising has trust 1 and becomes a trustee
        vote_cast(voter=f, clip_id=good.pk, verdict="valid")
    rising.refresh_from_db()
    assert rising.is_trustee
    record(rising, 2)  # quota for rising; trust now 1/3
    rising.refresh_from_db()
    assert rising.trust == pytest.approx(1 / 3) and not rising.is_trustee  # recording more diluted it

    assert_database_equals_a_full_recompute()

    # Now make rising a trustee again through more valid clips, let them vote, then lose the status.
    for clip in Clip.objects.filter(contributor=rising, status=ClipStatus.PENDING):
        for f in founders:
            vote_cast(voter=f, clip_id=clip.pk, verdict="valid")
    rising.refresh_from_db()
    assert rising.is_trustee and rising.trust == 1.0
    target = record(ContributorFactory())[0]
    for voter in [*founders[:5], rising]:
        vote_cast(voter=voter, clip_id=target.pk, verdict="valid")
    target.refresh_from_db()
    assert target.status == ClipStatus.VALID  # rising's vote was the sixth

    record(rising, 6)  # rising's trust drops to 3/9 = 0.33: not a trustee; their vote stops counting
    trust_recompute_all()
    target.refresh_from_db()
    rising.refresh_from_db()
    assert not rising.is_trustee
    assert (target.status, target.votes_counted) == (ClipStatus.PENDING, 5)
    assert Vote.objects.filter(clip=target, voter=rising).exists()  # kept, and counts again if trust returns
    assert_database_equals_a_full_recompute()


def test_removing_a_founder_uncounts_their_votes_everywhere(capsys):
    founders = [FounderFactory() for _ in range(6)]
    for f in founders:
        record(f, 2)
    clip = record(ContributorFactory())[0]
    for f in founders:
        vote_cast(voter=f, clip_id=clip.pk, verdict="valid")
    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID

    call_command("founders", "remove", founders[0].user.username)

    clip.refresh_from_db()
    removed = Contributor.objects.get(pk=founders[0].pk)
    assert (clip.status, clip.votes_counted) == (ClipStatus.PENDING, 5)
    assert not removed.is_founding_trustee and not removed.is_trustee
    assert "no longer a founder, not a trustee" in capsys.readouterr().out

    call_command("founders", "add", founders[0].user.username)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID


def test_founders_command_refuses_unknown_users():
    with pytest.raises(CommandError, match="No contributor with the username: ghost"):
        call_command("founders", "add", "ghost")
    with pytest.raises(CommandError, match="Name at least one user"):
        call_command("founders", "add")


def test_trust_recompute_command_prints_a_summary(capsys):
    FounderFactory(is_trustee=False, trust=0.0)
    call_command("trust_recompute")

    out = capsys.readouterr().out
    assert "1 contributors changed, 1 trustees (+1 / -0)" in out


def test_imported_valid_clips_keep_their_status_and_give_their_speaker_no_trust():
    speaker = ContributorFactory()
    clip = clip_submit(
        contributor=speaker, prompt_id=PromptFactory().pk, data=_AUDIO[119], provenance="imported", status="valid"
    ).clip
    trust_recompute_all()

    clip.refresh_from_db()
    speaker.refresh_from_db()
    assert clip.status == ClipStatus.VALID and clip.status_fixed
    assert (speaker.trust, speaker.is_trustee) == (0.0, False)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.integers(5, 8),  # founders among 10 people: enough for the 6 votes a clip needs
    st.lists(
        st.tuples(st.integers(0, 9), st.integers(0, 7), st.booleans()),  # (voter, target clip, valid)
        min_size=1,
        max_size=70,
    ),
)
def test_incremental_equals_full_after_any_sequence_of_votes(n_founders, votes):
    """Random votes through the real service (refusals included); after each, the database must be what
    a full recompute from scratch gives. Non-founders record one clip each, so one valid clip makes them
    trustees whose votes then count, and invalid votes can take that away again: the cascade is exercised."""
    with transaction.atomic():
        people = [FounderFactory() if i < n_founders else ContributorFactory() for i in range(10)]
        newcomers_clips = [record(person)[0] for person in people[n_founders:]]
        for founder in people[:n_founders]:
            record(founder, 4)  # quota
        targets = newcomers_clips + list(Clip.objects.filter(contributor__in=people[:n_founders]))[:8]
        for voter_index, target, valid in votes:
            with contextlib.suppress(ServiceError):  # refusals (quota, not a trustee...) are part of the test
                verdict = "valid" if valid else "invalid"
                vote_cast(voter=people[voter_index], clip_id=targets[target].pk, verdict=verdict)
            assert_database_equals_a_full_recompute()
        transaction.set_rollback(True)


def test_the_property_test_reaches_new_trustees():
    """The generator above must be able to make a newcomer a trustee (else it tests nothing of the cascade)."""
    founders = [FounderFactory() for _ in range(6)]
    for f in founders:
        record(f, 4)
    newcomer = ContributorFactory()
    clip = record(newcomer)[0]
    for f in founders:
        vote_cast(voter=f, clip_id=clip.pk, verdict="valid")
    newcomer.refresh_from_db()
    assert newcomer.is_trustee
    assert_database_equals_a_full_recompute()
