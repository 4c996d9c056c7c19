"""Casting votes, skipping and reporting clips: the trustee's side of validation, on assigned clips only."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from contributors.conf import trust_params
from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipSkip,
    ClipStatus,
    Contributor,
    InvalidReason,
    ReportReason,
    ValidationAssignment,
    Verdict,
    Vote,
    new_queue_key,
)
from contributors.selectors import contributor_locked_with_quota, contributor_with_quota
from contributors.services.assignments import (
    ValidationOffer,
    assignment_close,
    assignment_for_action,
    assignment_unexpired,
    validation_assign_next,
)
from contributors.services.trust import (
    TRUST_LOCK_KEY,
    TrustHandover,
    counted_votes_sql,
    trust_after_vote,
    trust_write,
    trust_write_lock,
)
from contributors.sql_functions import vote_function
from core import sql
from core.errors import ServiceError
from core.inputs import parse_id, report_note
from core.sql import prepared_cursor


@dataclass(frozen=True)
class VoteOutcome:
    vote: Vote
    clip: Clip
    quota_left: int
    next: ValidationOffer | None  # the voter's next assignment; None when they are no longer a trustee


def _clip_for_trustee(*, voter: Contributor, clip_id: object) -> Clip:
    """The access rules for acting on a clip, one condition per line (Zulip's access_* style); the clip
    comes back locked."""
    pk = parse_id(clip_id)  # ASCII digits only: the URL takes any text (<str:clip_id>)
    clip = _clip_locked(pk) if pk is not None else None
    unknown = ServiceError("clip_unknown", f"There is no clip with id {clip_id!r}.", status_code=404)
    if clip is None:
        raise unknown
    if (
        voter.is_trustee
        and clip.contributor_id != voter.pk
        and not ValidationAssignment.objects.filter(trustee=voter, clip=clip).exists()
    ):
        raise unknown  # never handed to this trustee: walking ids must not tell which clips exist, pending or decided
    return _clip_access(voter=voter, clip=clip)


def _clip_and_assignment(*, voter: Contributor, clip_id: object) -> tuple[Clip, ValidationAssignment]:
    """The clip and the voter's open assignment on it, both locked, under the rules of ``_clip_for_trustee`` and
    ``assignment_for_action``: in one statement when the assignment is there (every vote the page sends), else
    step by step, which says what is wrong."""
    pk = parse_id(clip_id)
    row = None
    if pk is not None:
        with prepared_cursor() as cursor:
            cursor.execute(_clip_with_assignment_sql(), [pk, voter.pk, AssignmentOutcome.OPEN.value])
            row = cursor.fetchone()
    if row is None:
        clip = _clip_for_trustee(voter=voter, clip_id=clip_id)
        return clip, assignment_for_action(trustee=voter, clip=clip)
    n = sql.width(Clip)
    clip = _clip_access(voter=voter, clip=sql.from_row(Clip, row[:n]))
    return clip, assignment_unexpired(sql.from_row(ValidationAssignment, row[n:]))


@functools.cache
def _clip_with_assignment_sql() -> str:
    """The clip and the voter's open assignment on it, both locked (written out once: core.sql)."""
    lock = " FOR UPDATE OF c, a" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {sql.columns(Clip, 'c')}, {sql.columns(ValidationAssignment, 'a')}"  # noqa: S608 (names only)
        f" FROM {Clip._meta.db_table} c JOIN {ValidationAssignment._meta.db_table} a ON a.clip_id = c.id"
        f" WHERE c.id = %s AND a.trustee_id = %s AND a.outcome = %s{lock}"
    )


def _clip_access(*, voter: Contributor, clip: Clip) -> Clip:
    if not voter.is_trustee:
        raise ServiceError("not_trustee", "Only trustees validate clips.", status_code=403)
    if clip.contributor_id == voter.pk:
        raise ServiceError("vote_own_clip", "You cannot vote on your own recording.", status_code=403)
    if clip.status != ClipStatus.PENDING:
        raise ServiceError(
            "clip_not_pending", f"This clip is already {clip.status}; it takes no more votes.", status_code=409
        )
    return clip


def _clip_locked(pk: int) -> Clip | None:
    with prepared_cursor() as cursor:
        cursor.execute(_clip_locked_sql(), [pk])
        row = cursor.fetchone()
    return sql.from_row(Clip, row) if row else None


@functools.cache
def _clip_locked_sql() -> str:
    """The clip's row, locked (written out once: core.sql)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT {sql.columns(Clip, 'c')} FROM {Clip._meta.db_table} c WHERE c.id = %s{lock}"  # noqa: S608


_VOTE_INSERT = (
    f"INSERT INTO {Vote._meta.db_table} (clip_id, voter_id, verdict, reason, created_at)"  # noqa: S608 (names only)
    " VALUES (%s, %s, %s, %s, %s) RETURNING id"
)


def _vote_record(
    *, clip: Clip, voter: Contributor, verdict: str, reason: str, assignment: ValidationAssignment
) -> tuple[Vote, tuple[int, int] | None]:
    """Insert the vote and close its assignment (written out once: core.sql); a second vote by the same voter on
    the clip raises IntegrityError (the unique constraint).

    On PostgreSQL one statement also reads the clip's counted votes (``counted_votes_sql``), returned as (valid,
    invalid) for ``trust_after_vote``: three round trips in one. Its snapshot predates its own insert, so the
    new vote is added to them: it counts, as the voter is a trustee (``_clip_access``, on their locked row).
    Elsewhere the counts are None and ``trust_after_vote`` reads them after the insert."""
    vote = Vote(clip=clip, voter=voter, verdict=verdict, reason=reason, created_at=timezone.now())
    values: list[int | str | datetime | None] = [
        clip.pk,
        voter.pk,
        verdict,
        reason,
        connection.ops.adapt_datetimefield_value(vote.created_at),
    ]
    if connection.vendor != "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(_VOTE_INSERT, values)
            vote.pk = cursor.fetchone()[0]
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.VOTED)
        counted = None
    else:
        counts, count_params = counted_votes_sql()
        assignment.outcome, assignment.closed_at = AssignmentOutcome.VOTED, timezone.now()
        with prepared_cursor() as cursor:
            cursor.execute(
                f"WITH new_vote AS ({_VOTE_INSERT}), closed AS (UPDATE {ValidationAssignment._meta.db_table}"  # noqa: S608
                f" SET outcome = %s, closed_at = %s WHERE id = %s) SELECT new_vote.id, counted.valid, counted.invalid"
                f" FROM new_vote, ({counts}) AS counted",
                [*values, assignment.outcome.value, assignment.closed_at, assignment.pk, *count_params, clip.pk],
            )
            vote.pk, valid, invalid = cursor.fetchone()
        counted = (valid + (verdict == Verdict.VALID), invalid + (verdict == Verdict.INVALID))
    vote._state.adding = False
    return vote, counted


def _vote_duplicate() -> ServiceError:
    return ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409)


def _vote_reason_check(*, verdict: str, reason: str) -> None:
    """An "invalid" verdict names one of the reasons; a "valid" one names none."""
    if verdict == Verdict.INVALID and reason not in InvalidReason.values:
        raise ServiceError("reason_invalid", f"Say why the clip is invalid: one of {', '.join(InvalidReason.values)}.")
    if verdict == Verdict.VALID and reason:
        raise ServiceError("reason_invalid", "A valid clip takes no reason; reasons go with an invalid verdict.")


def vote_cast(*, voter: Contributor, clip_id: object, verdict: str, reason: str = "") -> VoteOutcome:
    """Record a trustee's verdict on the clip assigned to them, bring statuses and trust up to date, and
    hand them their next clip in the same transaction (one request per judged clip).

    Refused: a malformed verdict (400), an unknown clip (404), a non-trustee or one's own clip (403), a
    clip no longer pending, a second vote, or a clip not assigned to the voter (or no longer: expired)
    (409, also when two arrive at once), past the quota (429). An "invalid" verdict needs a ``reason``
    (one of ``InvalidReason``), a "valid" one takes none (400 ``reason_invalid`` otherwise).

    On PostgreSQL the vote's statements up to the next assignment's pick are one call
    (:func:`_vote_in_one_call`); what it returns goes through the same checks and the same trust code as the
    statements run one by one, which SQLite, the exclusive path and ``settings.VOTE_ONE_CALL = False`` use."""
    if verdict not in Verdict.values:
        raise ServiceError("verdict_invalid", f"A verdict is one of {', '.join(Verdict.values)}.")
    _vote_reason_check(verdict=verdict, reason=reason)
    pk = parse_id(clip_id)
    one_call = pk is not None and _one_call_enabled()

    exclusive_ran = False

    def cast(exclusive: bool) -> VoteOutcome:
        nonlocal exclusive_ran
        exclusive_ran = exclusive
        now = timezone.now()
        called = None
        if exclusive or not one_call or pk is None:  # one_call implies a pk; said again for the type checker
            if not exclusive:
                trust_write_lock(exclusive=False)
            # Locking the voter's row makes the quota check and the insert one step for this voter.
            locked_voter, quota_left = contributor_locked_with_quota(contributor_id=voter.pk)
        else:
            called = _vote_in_one_call(voter=voter, clip_pk=pk, verdict=verdict, reason=reason, now=now)
            locked_voter, quota_left = called.voter, called.quota_left
        try:
            # The function returns the clip and its open assignment together, or neither.
            if called is not None and called.clip is not None and called.assignment is not None:
                clip = _clip_access(voter=locked_voter, clip=called.clip)
                assignment = assignment_unexpired(called.assignment, now=now)
            else:
                clip, assignment = _clip_and_assignment(voter=locked_voter, clip_id=clip_id)
        except ServiceError as refusal:
            # A vote closes its assignment, so a second vote finds none: say what actually happened.
            if (
                refusal.code == "clip_not_assigned"
                and pk is not None
                and Vote.objects.filter(clip_id=pk, voter=locked_voter).exists()
            ):
                raise _vote_duplicate() from refusal
            raise
        if quota_left <= 0:
            raise ServiceError(
                "quota_exhausted",
                "You have used the votes your recordings earned; record more to validate more.",
                status_code=429,
                quota_left=0,
            )
        if called is not None and called.vote_id is not None:
            vote = Vote(
                pk=called.vote_id, clip=clip, voter=locked_voter, verdict=verdict, reason=reason, created_at=now
            )
            vote._state.adding = False
            assignment.outcome, assignment.closed_at = AssignmentOutcome.VOTED, now
            counted = called.counted
        else:
            try:
                # No savepoint: a duplicate (two tabs, same instant) ends the whole transaction with the 409.
                vote, counted = _vote_record(
                    clip=clip, voter=locked_voter, verdict=verdict, reason=reason, assignment=assignment
                )
            except IntegrityError as exc:
                raise _vote_duplicate() from exc
        if trust_after_vote(clip=clip, exclusive=exclusive, counted=counted):
            # The full recompute ran: statuses, trust and trustees may all have moved.
            clip.refresh_from_db()
            locked_voter.refresh_from_db(fields=["is_trustee", "trust"])
        candidates = called.candidates if called is not None and called.vote_id is not None else None
        next_offer = validation_assign_next(trustee=locked_voter, quota_left=quota_left - 1, candidates=candidates)
        return VoteOutcome(vote=vote, clip=clip, quota_left=quota_left - 1, next=next_offer)

    try:
        outcome = trust_write(cast, locks_shared=True)
    except IntegrityError as exc:
        # The one call's insert met the unique constraint (two tabs, same instant): its transaction is over.
        if not _is_vote_duplicate(exc):
            raise
        raise _vote_duplicate() from exc
    if exclusive_ran:
        # Under the exclusive lock a settling recompute may follow the vote inside trust_write.
        outcome.clip.refresh_from_db()
    return outcome


def _one_call_enabled() -> bool:
    """The one-call path: PostgreSQL, unless settings.VOTE_ONE_CALL is False (the tests that hold both paths equal
    turn it off)."""
    return connection.vendor == "postgresql" and settings.VOTE_ONE_CALL


def _is_vote_duplicate(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == "vote_one_per_clip_voter"


@dataclass(frozen=True)
class _OneCall:
    """What :func:`contributors.sql_functions.vote_function` returned, as models."""

    voter: Contributor  # locked
    quota_left: int  # before this vote
    clip: Clip | None  # with the voter's open assignment on it, both locked; None when there is none
    assignment: ValidationAssignment | None
    vote_id: int | None  # None: not inserted (a check below refuses the vote, or the statements run one by one)
    counted: tuple[int, int] | None  # the clip's counted (valid, invalid) votes, this one included
    candidates: list[int]  # the queue's picks for the next assignment; empty: the queue's own walk decides


def _vote_in_one_call(*, voter: Contributor, clip_pk: int, verdict: str, reason: str, now: datetime) -> _OneCall:
    """The vote's statements up to the next assignment's pick in one round trip (contributors/sql_functions.py);
    raises :class:`TrustHandover` when the stored state is not exact (nothing was done then)."""
    params = trust_params()
    with prepared_cursor() as cursor:
        cursor.execute(
            _one_call_sql(),
            [
                voter.pk,
                clip_pk,
                verdict,
                reason,
                now,
                TRUST_LOCK_KEY,
                float(params.votes_per_clip),
                params.offer_max_votes,
                new_queue_key(),
            ],
        )
        row = cursor.fetchone()
    if not row[0]:
        raise TrustHandover
    at = 1 + sql.width(Contributor) + 2
    if row[1] is None:
        raise Contributor.DoesNotExist(f"no contributor {voter.pk}")
    locked_voter, quota_left = contributor_with_quota(row[1:at])
    clip = assignment = None
    if row[at] is not None:
        clip = sql.from_row(Clip, row[at : at + sql.width(Clip)])
        at += sql.width(Clip)
        assignment = sql.from_row(ValidationAssignment, row[at : at + sql.width(ValidationAssignment)])
        at += sql.width(ValidationAssignment)
    else:
        at += sql.width(Clip) + sql.width(ValidationAssignment)
    vote_id, valid, invalid, candidates = row[at:]
    return _OneCall(
        voter=locked_voter,
        quota_left=quota_left,
        clip=clip,
        assignment=assignment,
        vote_id=vote_id,
        counted=None if vote_id is None else (valid, invalid),
        candidates=list(candidates or ()),
    )


@functools.cache
def _one_call_sql() -> str:
    function = vote_function()
    columns = ", ".join(
        [
            "r.o_exact",
            sql.columns(Contributor, "(r.o_voter)"),
            "r.o_clips",
            "r.o_votes",
            sql.columns(Clip, "(r.o_clip)"),
            sql.columns(ValidationAssignment, "(r.o_assignment)"),
            "r.o_vote_id",
            "r.o_valid",
            "r.o_invalid",
            "r.o_candidates",
        ]
    )
    return (
        f"SELECT {columns} FROM {function.name}(%s::bigint, %s::bigint, %s::text, %s::text, %s::timestamptz,"  # noqa: S608
        " %s::bigint, %s::double precision, %s::integer, %s::double precision) r"
    )


def clip_skip(*, contributor: Contributor, clip_id: object) -> None:
    """Pass on the assigned clip: it is not offered to this trustee again, and the next one is."""
    with transaction.atomic():
        clip = _clip_for_trustee(voter=contributor, clip_id=clip_id)
        assignment = assignment_for_action(trustee=contributor, clip=clip)
        ClipSkip.objects.get_or_create(clip=clip, contributor=contributor)
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.SKIPPED)


CLIP_NOTE_MAX = 1000


def clip_report(*, reporter: Contributor, clip_id: object, reason: str, note: str = "") -> ClipReport:
    """Flag the assigned clip for the operators (wrong text, offensive, personal data...); one report per
    trustee; the clip is not offered to them again."""
    if reason not in ReportReason.values:
        raise ServiceError("reason_invalid", f"A reason is one of {', '.join(ReportReason.values)}.")
    note = report_note(note, limit=CLIP_NOTE_MAX)
    with transaction.atomic():
        clip = _clip_for_trustee(voter=reporter, clip_id=clip_id)
        if ClipReport.objects.filter(clip=clip, reporter=reporter).exists():
            raise ServiceError("report_duplicate", "You have already reported this clip.", status_code=409)
        assignment = assignment_for_action(trustee=reporter, clip=clip)
        report = ClipReport.objects.create(clip=clip, reporter=reporter, reason=reason, note=note)
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.REPORTED)
        return report
