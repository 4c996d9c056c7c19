"""The validation path's PL/pgSQL functions against the Python statements they fold together: the same votes through
both leave the same rows and get the same answers."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction

from contributors.models import AssignmentOutcome, Clip, TrustRecompute, ValidationAssignment, Vote
from contributors.services.trust import trust_check, trust_recompute_all
from contributors.services.votes import vote_cast
from core.errors import ServiceError
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, assign

pytestmark = pytest.mark.django_db

_sha = itertools.count()


def _clip(contributor) -> Clip:
    """A clip row without audio work (votes never open the file)."""
    audio = f"clips/00/{next(_sha):064d}.flac"
    return Clip.objects.create(
        contributor=contributor,
        prompt=PromptFactory(),
        audio=audio,
        sha256=audio.rsplit("/", 1)[1].removesuffix(".flac"),
        duration_s=2.0,
        original_format="WAV",
        original_sample_rate=16_000,
        original_channels=1,
        original_bytes=64_000,
        rms_dbfs=-20.0,
        peak_dbfs=-3.0,
        clipping_ratio=0.0,
    )


class _Done(Exception):
    """Rolls a scenario back once its rows are read, so that the other path starts from the same database."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = rows


def _scenario() -> dict[str, Any]:
    """A crowd and a sequence of votes touching every branch of the vote: a decision that admits its author (a first
    admission, no recompute), decisions that demote a trustee who has voted (the hand-over to the exclusive lock
    and the full recompute), the end of a quota, and each refusal. Returns the rows and answers, keyed by creation
    order (ids differ between runs)."""
    founders = [FounderFactory(vote_allowance=40) for _ in range(6)]
    scarce = FounderFactory(vote_allowance=1)  # one vote in all
    newcomer, voter_author, other = (ContributorFactory() for _ in range(3))
    people = [*founders, scarce, newcomer, voter_author, other]
    clips: list[Clip] = []

    def clips_of(author, n: int) -> list[Clip]:
        made = [_clip(author) for _ in range(n)]
        clips.extend(made)
        return made

    newcomer_decided, (deciding, own) = clips_of(newcomer, 5), clips_of(newcomer, 2)
    voter_decided, (demoting,) = clips_of(voter_author, 6), clips_of(voter_author, 1)
    pending = clips_of(other, 4)
    seeded = [Vote(clip=c, voter=f, verdict="valid") for c in newcomer_decided + voter_decided for f in founders]
    seeded.append(Vote(clip=pending[0], voter=voter_author, verdict="valid"))  # their votes count once trustees
    Vote.objects.bulk_create(seeded)
    trust_recompute_all()  # newcomer: 5 valid clips, one short; voter_author: a trustee with a vote

    index = {c.pk: i for i, c in enumerate(clips)}
    answers: list[Any] = []

    def vote(voter, clip_id, verdict: str = "valid", reason: str = "", ttl_s: float = 600) -> None:
        if isinstance(clip_id, Clip):
            assign(voter, clip_id, ttl_s=ttl_s)
            clip_id = clip_id.pk
        try:
            outcome = vote_cast(voter=voter, clip_id=clip_id, verdict=verdict, reason=reason)
        except ServiceError as exc:
            answers.append((exc.code, exc.status_code))
            return
        offer = outcome.next
        # The next clip is drawn at random; its assignment would decide what later picks find held.
        ValidationAssignment.objects.filter(outcome=AssignmentOutcome.OPEN).update(outcome=AssignmentOutcome.WITHDRAWN)
        answers.append(
            (
                index[outcome.clip.pk],
                str(outcome.clip.status),
                outcome.quota_left,
                None if offer is None else (offer.reason, offer.quota_left, offer.clip is None),
            )
        )

    for f in founders:  # the sixth decides the clip and makes the newcomer a trustee
        vote(f, deciding)
    for f in founders:  # the sixth decides it invalid: voter_author loses the status, and has voted
        vote(f, demoting, "invalid", "noise")
    vote(scarce, demoting, "invalid", "noise")  # a decided clip: refused
    vote(voter_author, pending[1])  # no longer a trustee
    vote(newcomer, pending[1])  # a trustee now, with votes earned by their clips
    vote(newcomer, own)  # their own clip
    vote(scarce, pending[2])  # the last vote left: no next clip
    vote(scarce, pending[3])  # none left
    vote(founders[0], pending[3], ttl_s=-1)  # expired
    vote(founders[0], 10**12)  # no such clip
    vote(founders[0], "12ab")  # not an id
    vote(founders[1], pending[2], "invalid", "noise")
    vote(founders[1], pending[2].pk)  # again: already voted
    consistent = trust_check().passed  # the votes left the database where a full recompute puts it
    Vote.objects.create(clip=pending[3], voter=founders[2], verdict="valid")  # bypasses the engine
    vote(founders[2], pending[3])  # a vote already there beside an open assignment: the unique constraint

    return {
        "answers": answers,
        "clips": [(c.status, c.score, c.votes_counted, c.votes_valid_counted) for c in _reread(clips)],
        "people": [(p.trust, p.is_trustee) for p in _reread(people)],
        "votes": sorted(
            (index[v.clip_id], [p.pk for p in people].index(v.voter_id), v.verdict, v.reason)
            for v in Vote.objects.filter(clip__in=clips)
        ),
        "assignments": Counter(ValidationAssignment.objects.values_list("outcome", flat=True)),
        "recomputes": Counter(TrustRecompute.objects.values_list("trigger", flat=True)),
        "consistent": consistent,
    }


def _reread(rows: list) -> list:
    model = type(rows[0])
    by_pk = model.objects.in_bulk([row.pk for row in rows])
    return [by_pk[row.pk] for row in rows]


def _run(settings, *, one_call: bool) -> dict[str, Any]:
    settings.VOTE_ONE_CALL = one_call
    try:
        with transaction.atomic():
            raise _Done(_scenario())
    except _Done as done:
        return done.rows


def test_the_same_votes_through_the_one_call_and_the_statements_one_by_one_leave_the_same_rows(settings):
    """On PostgreSQL the vote's statements are one function call; on SQLite (and here with VOTE_ONE_CALL off) they
    run one by one, and they are the definition: the answers, statuses, scores, trust, trustees, votes,
    assignments' outcomes and recomputes must all come out the same."""
    if connection.vendor != "postgresql":
        pytest.skip("the functions are PostgreSQL's")
    one_call = _run(settings, one_call=True)
    one_by_one = _run(settings, one_call=False)

    assert one_call == one_by_one, (one_call, one_by_one)
    # The scenario reached what it means to: each branch once at least.
    codes = {answer[0] for answer in one_call["answers"] if isinstance(answer[0], str)}
    assert codes == {
        "clip_not_pending",
        "not_trustee",
        "vote_own_clip",
        "quota_exhausted",
        "clip_not_assigned",
        "clip_unknown",
        "vote_duplicate",
    }
    assert one_call["recomputes"]["vote_flip"] == 1 and one_call["consistent"]
    assert ("quota_exhausted", 0, True) in [answer[3] for answer in one_call["answers"] if len(answer) == 4]
