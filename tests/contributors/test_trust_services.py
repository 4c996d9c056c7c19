"""The trust engine on the database: one definition (the incremental path equals a full recompute after
every vote), keeping trustees who still earn it, founders, the check, and the release gate."""

from __future__ import annotations

import contextlib

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contributors.models import Clip, ClipStatus, Contributor, CorpusSource, TrustRecompute, TrustState, Vote
from contributors.services.clips import clip_submit
from contributors.services.trust import trust_check, trust_recompute_all, trust_settled
from core.errors import ServiceError
from tests.factories import (
    ClipFactory,
    ContributorFactory,
    FounderFactory,
    PromptFactory,
    recorded_clips,
    speechlike,
    vote_on,
    wav_bytes,
)

pytestmark = pytest.mark.django_db

# Crowds are built from factory rows (tests.factories.ClipFactory): the engine reads no audio, and uploading it
# was most of this file's time. The first test below keeps the factory equal to an upload.
record = recorded_clips


def upload(contributor, seed: int = 0) -> Clip:
    """One clip through the real upload path (audio normalised, hashed and stored)."""
    data = wav_bytes(speechlike(1.1, seed=seed))
    return clip_submit(contributor=contributor, prompt_id=PromptFactory().pk, data=data).clip


def validate(clip: Clip, voters, verdict: str = "valid") -> None:
    for voter in voters:
        vote_on(voter, clip, verdict)


def assert_one_definition() -> None:
    check = trust_check()
    assert check.passed, [str(d) for d in check.differences]


def refreshed(contributor: Contributor) -> Contributor:
    return Contributor.objects.get(pk=contributor.pk)


@pytest.fixture
def founders() -> list[Contributor]:
    people = [FounderFactory(vote_allowance=200) for _ in range(6)]
    for f in people:
        record(f, 2)
    return people


def trustee_with_a_deciding_vote(founders: list[Contributor]) -> tuple[Contributor, Clip]:
    """(rising, target): rising earned the status on six clips the founders validated, then cast the sixth vote,
    after five founders', on target, another contributor's clip."""
    rising = ContributorFactory()
    for clip in record(rising, 6):
        validate(clip, founders)
    target = record(ContributorFactory())[0]
    validate(target, [*founders[:5], rising])
    return rising, target


# The audio's own fields, which differ between any two recordings; every other field must be the upload's.
_AUDIO_FIELDS = {
    "id", "contributor", "prompt", "audio", "sha256", "duration_s", "original_format", "original_sample_rate",
    "original_channels", "original_bytes", "rms_dbfs", "peak_dbfs", "clipping_ratio", "queue_key", "created_at",
    "updated_at",
}  # fmt: skip


def test_a_factory_clip_is_an_uploaded_clip_to_the_trust_engine(settings):
    """Every other test here builds its crowd with ClipFactory: a clip it makes must equal an uploaded one in every
    field but the audio's own, before and after votes, and move its author's trust as the upload does. Under the
    ``proposal`` preset, where a new pending clip dilutes its author's trust, so that the upload's trust
    bookkeeping shows."""
    settings.TRUST = {**settings.TRUST, "PRESET": "proposal"}
    founders = [FounderFactory(vote_allowance=20) for _ in range(6)]
    uploader, made = ContributorFactory(), ContributorFactory()

    def row(clip: Clip) -> dict:
        clip.refresh_from_db()
        return {f.name: getattr(clip, f.name) for f in Clip._meta.concrete_fields if f.name not in _AUDIO_FIELDS}

    def standing(contributor: Contributor) -> tuple[float, bool]:
        contributor.refresh_from_db()
        return contributor.trust, contributor.is_trustee

    first_uploaded, first_made = upload(uploader, seed=1), ClipFactory(contributor=made)
    assert row(first_made) == row(first_uploaded)
    assert row(first_made)["status"] == ClipStatus.PENDING and row(first_made)["analysed_at"] is None
    validate(first_uploaded, founders)
    validate(first_made, founders)
    assert row(first_made) == row(first_uploaded)
    assert standing(made) == standing(uploader) == (1.0, True)  # one valid clip of one

    second_uploaded, second_made = upload(uploader, seed=2), ClipFactory(contributor=made)

    assert row(second_made) == row(second_uploaded)
    assert standing(made) == standing(uploader) == (0.5, False)  # the new pending clip dilutes: 1 valid of 2
    assert_one_definition()


def test_recompute_writes_only_what_changed_and_logs_itself():
    founders = [FounderFactory(is_trustee=False, trust=0.0) for _ in range(2)]
    first = trust_recompute_all()
    second = trust_recompute_all()

    assert first.contributors_changed == 2 and first.trustees_gained == 2
    assert second.clips_changed == second.contributors_changed == 0
    assert TrustRecompute.objects.count() == 2
    assert all(refreshed(f).is_trustee for f in founders)
    assert TrustState.objects.get().exact
    # It times its own phases (benchmarks/trust_db.py reports them): the three parts of what the log records.
    assert set(first.phases) == {"snapshot", "engine", "write-back"}
    assert 0 < sum(first.phases.values()) <= first.seconds


def test_six_valid_clips_make_a_trustee_and_recording_more_does_not_demote(founders):
    rising = ContributorFactory()
    clips = record(rising, 6)
    for clip in clips[:5]:
        validate(clip, founders)
    assert not refreshed(rising).is_trustee  # five of five decided: 0.566
    validate(clips[5], founders)
    assert refreshed(rising).is_trustee and refreshed(rising).trust == pytest.approx(0.6097, abs=1e-4)

    record(rising, 6)  # a new set under review dilutes nothing

    assert refreshed(rising).is_trustee and refreshed(rising).trust == pytest.approx(0.6097, abs=1e-4)
    assert_one_definition()


def test_under_the_proposal_preset_recording_more_demotes(founders, settings):
    settings.TRUST = {**settings.TRUST, "PRESET": "proposal"}
    trust_recompute_all()
    rising = ContributorFactory()
    validate(record(rising)[0], founders)
    assert refreshed(rising).is_trustee  # 1 valid of 1: trust 1

    record(rising, 2)  # (1 - 0) / 3: the upload itself flips the status (the handover path)

    assert refreshed(rising).trust == pytest.approx(1 / 3) and not refreshed(rising).is_trustee
    assert_one_definition()


def test_a_trustee_who_loses_the_status_stops_counting_and_dependent_clips_return_to_pending(founders):
    rising, target = trustee_with_a_deciding_vote(founders)
    target.refresh_from_db()
    assert target.status == ClipStatus.VALID  # rising's vote was the sixth

    for clip in record(rising, 3):  # three of rising's new clips are rejected: 6 valid of 9 decided, 0.35
        validate(clip, founders, "invalid")

    target.refresh_from_db()
    assert not refreshed(rising).is_trustee
    assert (target.status, target.votes_counted) == (ClipStatus.PENDING, 5)
    assert Vote.objects.filter(clip=target, voter=rising).exists()  # kept, and counts again if trust returns
    assert_one_definition()


def test_an_author_who_has_never_voted_becomes_a_trustee_without_the_full_recompute(founders):
    """Only trustees vote, so a first admission is of someone whose votes count nowhere: no other clip moves,
    and the vote stays on the shared lock (no recompute under the exclusive one stalls every other vote)."""
    rising = ContributorFactory()
    clips = record(rising, 6)
    for clip in clips[:5]:
        validate(clip, founders)
    trust_recompute_all()  # a fixed point, as a live database's is: votes take the shared lock
    recomputes = TrustRecompute.objects.count()

    validate(clips[5], founders)  # the sixth decision: 0.610

    assert refreshed(rising).is_trustee and refreshed(rising).trust == pytest.approx(0.6097, abs=1e-4)
    assert TrustRecompute.objects.count() == recomputes
    assert TrustState.objects.get().exact
    assert_one_definition()


def test_an_author_who_has_voted_loses_the_status_through_the_full_recompute(founders):
    """Their votes stop counting on every clip they judged: that needs the full recompute, as before."""
    rising, target = trustee_with_a_deciding_vote(founders)
    trust_recompute_all()
    recomputes = TrustRecompute.objects.filter(trigger="vote_flip").count()

    for clip in record(rising, 3):  # 6 valid of 9 decided: 0.35
        validate(clip, founders, "invalid")

    target.refresh_from_db()
    assert not refreshed(rising).is_trustee and target.status == ClipStatus.PENDING
    assert TrustRecompute.objects.filter(trigger="vote_flip").count() == recomputes + 1
    assert_one_definition()


def test_a_second_generation_validated_with_the_first_is_kept_by_every_recompute(founders):
    """A second generation validated by founders and first-generation trustees together (three founder
    votes per clip, never enough alone): recomputes keep it, and so does re-grounding from the founders,
    because the first generation is admitted first."""
    first = [ContributorFactory() for _ in range(3)]
    for person in first:
        for clip in record(person, 6):
            validate(clip, founders)
    second = ContributorFactory()
    for clip in record(second, 6):
        validate(clip, [*founders[:3], *first])
    assert refreshed(second).is_trustee

    trust_recompute_all()
    assert refreshed(second).is_trustee
    assert_one_definition()

    trust_recompute_all(from_founders=True)  # the operator's clean slate re-grounds from the founders
    assert refreshed(second).is_trustee  # first's votes count again once first is re-admitted


def test_removing_a_founder_uncounts_their_votes_everywhere(founders, capsys):
    clip = record(ContributorFactory())[0]
    validate(clip, founders)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID

    call_command("founders", "remove", founders[0].user.username)

    clip.refresh_from_db()
    removed = refreshed(founders[0])
    assert (clip.status, clip.votes_counted) == (ClipStatus.PENDING, 5)
    assert not removed.is_founding_trustee and not removed.is_trustee
    assert "no longer a founder, not a trustee" in capsys.readouterr().out
    assert_one_definition()

    call_command("founders", "add", founders[0].user.username, "--allowance", "40")
    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID
    assert refreshed(founders[0]).vote_allowance == 40
    assert "allowance 40" in capsys.readouterr().out


def test_founders_command_refuses_bad_input():
    with pytest.raises(CommandError, match="No contributor with the username: ghost"):
        call_command("founders", "add", "ghost")
    with pytest.raises(CommandError, match="Name at least one user"):
        call_command("founders", "add")
    ContributorFactory(user__username="someone")
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("founders", "add", "someone", "--allowance", "-1")


def test_trust_recompute_command_prints_a_summary(capsys):
    FounderFactory(is_trustee=False, trust=0.0)
    call_command("trust_recompute")

    out = capsys.readouterr().out
    assert "1 contributors changed, 1 trustees (+1 / -0)" in out


def test_check_passes_on_a_consistent_database_and_lists_every_difference_otherwise(founders, capsys):
    clip = record(ContributorFactory())[0]
    validate(clip, founders)
    call_command("trust_recompute", "--check")
    assert "equals a full recompute" in capsys.readouterr().out

    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.PENDING, votes_counted=4)
    Contributor.objects.filter(pk=founders[0].pk).update(trust=0.5)
    with pytest.raises(CommandError, match="differs from a full recompute in 2 rows"):
        call_command("trust_recompute", "--check")

    out = capsys.readouterr().out
    assert f"clip {clip.pk}: status 'pending' -> 'valid', votes_counted 4 -> 6" in out
    assert f"contributor {founders[0].pk}: trust 0.5 -> 1.0" in out
    with pytest.raises(CommandError, match="drop --from-founders"):
        call_command("trust_recompute", "--check", "--from-founders")
    call_command("trust_recompute")
    call_command("trust_recompute", "--check")


def test_a_release_reads_clips_only_from_a_state_that_passes_the_check(founders):
    clip = record(ContributorFactory())[0]
    validate(clip, founders)
    with trust_settled():
        pass
    Clip.objects.filter(pk=clip.pk).update(votes_counted=3)

    with pytest.raises(ServiceError, match="differs from a full recompute in 1 rows") as refused, trust_settled():
        pytest.fail("the block must not run")
    assert refused.value.code == "trust_inconsistent"


def test_imported_valid_clips_keep_their_status_and_give_their_speaker_no_trust():
    speaker = ContributorFactory()
    source = CorpusSource.objects.create(name="corpus", licence="CC-BY-4.0", citation="A corpus.")
    clip = clip_submit(
        contributor=speaker,
        prompt_id=PromptFactory().pk,
        data=wav_bytes(speechlike(1.1, seed=159)),
        provenance="imported",
        source=source,
        status="valid",
    ).clip
    trust_recompute_all()

    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID and clip.status_fixed
    assert (refreshed(speaker).trust, refreshed(speaker).is_trustee) == (0.0, False)


# --- the reproduction and the property test -------------------------------------------------


@pytest.mark.parametrize("preset", ["proposal", "wilson"])
def test_the_reproduction_a_vote_that_leaves_its_clip_pending_still_equals_a_full_recompute(preset, settings):
    """Issue #11, point 3: six founders with four clips each; a records c, c2, c3 and b records d; every
    founder validates c2 and c3; founders 1-5 validate d and reject c; a validates d; b validates c; then
    founder 6 rejects c. c stays pending (six invalid of seven counted votes), yet a recompute climbing from
    the founders alone would make it invalid and drop a and b. Under ``proposal`` a (2 valid of 3 clips) and
    b (d valid) hold each other up with votes that still count, so both are kept and d stays valid; under
    ``wilson`` a never becomes a trustee (2 valid of 2 decided is 0.34). Either way the database must equal
    the full recompute after every vote."""
    settings.TRUST = {**settings.TRUST, "PRESET": preset}
    people = [FounderFactory() for _ in range(6)]
    for f in people:
        record(f, 4)
    a, b = ContributorFactory(), ContributorFactory()
    c, c2, c3 = record(a, 3)
    (d,) = record(b)
    for clip in (c2, c3):
        validate(clip, people)
    validate(d, people[:5])
    validate(c, people[:5], "invalid")
    with contextlib.suppress(ServiceError):  # under wilson a is no trustee and is refused
        vote_on(a, d)
    with contextlib.suppress(ServiceError):
        vote_on(b, c)
    assert_one_definition()

    vote_on(people[5], c, "invalid")

    assert_one_definition()
    c.refresh_from_db()
    d.refresh_from_db()
    if preset == "proposal":
        assert refreshed(a).is_trustee and refreshed(b).is_trustee
        assert (c.status, d.status) == (ClipStatus.PENDING, ClipStatus.VALID)
        trust_recompute_all(from_founders=True)  # what the first engine did: a climb from the founders alone
        c.refresh_from_db()
        d.refresh_from_db()
        assert not refreshed(a).is_trustee and not refreshed(b).is_trustee
        assert (c.status, d.status) == (ClipStatus.INVALID, ClipStatus.PENDING)
        assert_one_definition()  # and that state, too, is one a recompute from it reproduces
    else:
        assert not refreshed(a).is_trustee and not refreshed(b).is_trustee
        assert (c.status, d.status) == (ClipStatus.INVALID, ClipStatus.PENDING)


@st.composite
def crowd_plans(draw):
    """Founders, newcomers with 1-8 clips each (at least two of them with several: an author's trust is over their
    clips, and a generation rises on some of them decided), and a sequence of (voter, clip, verdict)."""
    n_founders = draw(st.integers(3, 5))
    clips_each = draw(st.lists(st.integers(1, 8), min_size=4, max_size=5).filter(lambda n: sum(c > 1 for c in n) >= 2))
    n_clips = sum(clips_each)
    votes = draw(
        st.lists(
            st.tuples(st.integers(0, n_founders + len(clips_each) - 1), st.integers(0, n_clips - 1), st.booleans()),
            min_size=1,
            max_size=60,
        )
    )
    return n_founders, clips_each, votes


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.sampled_from(["wilson", "proposal"]), crowd_plans())
def test_the_database_equals_a_full_recompute_after_every_vote(preset, plan):
    """Random votes through the real service (refusals included); after each, the database must be what a
    full recompute gives. A low z lets one or two votes decide a clip and a few clips make a trustee, so
    several generations of trustees rise and fall within one example."""
    n_founders, clips_each, votes = plan
    trust = {"PRESET": preset, "Z": 0.5, "MIN_TRUST": 0.5, "DISCARD_MIN_VOTES": 4, "QUOTA_VOTES_PER_CLIP": 4}
    with override_settings(TRUST=trust), transaction.atomic():
        founders = [FounderFactory(vote_allowance=60) for _ in range(n_founders)]
        newcomers = [ContributorFactory() for _ in clips_each]
        clips = [clip for person, n in zip(newcomers, clips_each, strict=True) for clip in record(person, n)]
        people = founders + newcomers
        for voter, target, valid in votes:
            with contextlib.suppress(ServiceError):  # refusals (not a trustee, own clip, decided...) are part of it
                vote_on(people[voter], clips[target], "valid" if valid else "invalid")
            assert_one_definition()
        transaction.set_rollback(True)


def test_the_property_test_reaches_several_generations():
    """The generator above must be able to make newcomers trustees in turn (else it tests no cascade)."""
    trust = {"Z": 0.5, "MIN_TRUST": 0.5, "DISCARD_MIN_VOTES": 4, "QUOTA_VOTES_PER_CLIP": 4}
    with override_settings(TRUST=trust):
        founders = [FounderFactory(vote_allowance=60) for _ in range(3)]
        first, second = ContributorFactory(), ContributorFactory()
        validate(record(first)[0], founders[:1])
        assert refreshed(first).is_trustee
        validate(record(second)[0], [first])
        assert refreshed(second).is_trustee
        assert_one_definition()
