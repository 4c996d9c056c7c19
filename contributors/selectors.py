"""Reads of the contributors' data (HackSoft: selectors)."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from contributors.conf import trust_params
from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipSkip,
    ClipStatus,
    Contributor,
    Prompt,
    PromptType,
    ProposalStatus,
    SentenceProposal,
    ValidationAssignment,
    Vote,
    new_queue_key,
)
from core import sql
from core.sql import prepared_cursor
from speech.trust import vote_quota


def prompts_next_for(*, contributor: Contributor, count: int = 5, exclude: Collection[int] = ()) -> list[Prompt]:
    """Active prompts this contributor has not recorded, skipped or reported, and that readers' reports have not
    put on hold: shared sentences first (everyone reads those, as in TIMIT's SA set), then the least-recorded,
    ties broken at random. ``exclude``: the sentences already on the reader's screen."""
    return list(
        Prompt.objects.filter(is_active=True, held_for_review=False)
        .exclude(pk__in=list(exclude))
        .exclude(clips__contributor=contributor)
        .exclude(skips__contributor=contributor)
        .exclude(reports__reporter=contributor)
        .annotate(
            n_clips=Count("clips"),
            shared_first=Case(
                When(prompt_type=PromptType.SHARED, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        )
        .order_by("shared_first", "n_clips", "?")[:count]
    )


def clips_of(*, contributor: Contributor) -> QuerySet[Clip]:
    """A contributor's clips, newest first, with their prompts (the counted votes are columns of the clip)."""
    return Clip.objects.filter(contributor=contributor).select_related("prompt").order_by("-created_at", "-id")


def clip_visible_to(*, clip_id: int, contributor: Contributor | None, is_staff: bool) -> Clip | None:
    """A clip whose details and audio this person may see: their own; a pending clip assigned to them now
    (validation); any for staff. Nobody else, so that walking ids reveals nothing."""
    clip = Clip.objects.filter(pk=clip_id).select_related("contributor", "prompt").first()
    if clip is None:
        return None
    if is_staff:
        return clip
    if contributor is None:
        return None
    if clip.contributor_id == contributor.pk:
        return clip
    if clip.status == ClipStatus.PENDING and _assigned_now(clip=clip, trustee=contributor):
        return clip
    return None


def _assigned_now(*, clip: Clip, trustee: Contributor) -> bool:
    return ValidationAssignment.objects.filter(
        clip=clip, trustee=trustee, outcome=AssignmentOutcome.OPEN, expires_at__gt=timezone.now()
    ).exists()


def vote_quota_left(*, contributor: Contributor) -> int:
    """Votes left: the preset's votes per clip submitted, plus the operator's allowance, minus votes cast."""
    return vote_quota(
        clips_submitted=contributor.clips.count(),
        votes_cast=Vote.objects.filter(voter=contributor).count(),
        allowance=contributor.vote_allowance,
        params=trust_params(),
    )


def contributor_locked_with_quota(*, contributor_id: int) -> tuple[Contributor, int]:
    """The contributor's row, locked until the transaction ends, and their votes left, in one round trip: the lock
    makes "check the quota, then spend it" one step per voter.

    On PostgreSQL the counts are read after the lock is granted, in statements of their own
    (contributors/sql_functions.py): counted in the locking statement they were as old as its snapshot, taken
    before the wait, so a vote that committed while this one waited went uncounted and one vote past the quota
    (or a clip served at none left) was possible."""
    with prepared_cursor() as cursor:
        cursor.execute(_locked_with_quota_sql(), [contributor_id])
        row = cursor.fetchone()
    if row is None or row[0] is None:
        raise Contributor.DoesNotExist(f"no contributor {contributor_id}")
    return contributor_with_quota(row)


def contributor_with_quota(row: Sequence[Any]) -> tuple[Contributor, int]:
    """The contributor and their votes left from their :func:`core.sql.columns` followed by their clips and votes."""
    n = sql.width(Contributor)
    contributor = sql.from_row(Contributor, row[:n])
    quota_left = vote_quota(
        clips_submitted=row[n], votes_cast=row[n + 1], allowance=contributor.vote_allowance, params=trust_params()
    )
    return contributor, quota_left


@functools.cache
def _locked_with_quota_sql() -> str:
    """Written out once (core.sql): the row, locked, and both counts in one statement (one function call on
    PostgreSQL)."""
    if connection.vendor == "postgresql":
        from contributors.sql_functions import lock_quota_function

        return (
            f"SELECT {sql.columns(Contributor, '(r.o_row)')}, r.o_clips, r.o_votes"  # noqa: S608 (names only)
            f" FROM {lock_quota_function().name}(%s::bigint) r"
        )
    contributors, clips, votes = (model._meta.db_table for model in (Contributor, Clip, Vote))
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {sql.columns(Contributor, 'c')},"  # noqa: S608 (table names only; the id is a parameter)
        f" (SELECT COUNT(*) FROM {clips} k WHERE k.contributor_id = c.id),"
        f" (SELECT COUNT(*) FROM {votes} v WHERE v.voter_id = c.id)"
        f" FROM {contributors} c WHERE c.id = %s{lock}"
    )


PICK_AMONG = 8  # clips read at a random point of the queue, of which one is drawn


def validation_next_for(*, contributor: Contributor, now: datetime | None = None) -> Clip | None:
    """The clip ``validation_pick_for`` draws, with its prompt; None when there is none."""
    clip_id = validation_pick_for(contributor=contributor, now=now)
    return None if clip_id is None else clip_with_prompt(clip_id)


def clip_with_prompt(clip_id: int, *, row: Sequence[Any] | None = None) -> Clip:
    """The clip and its prompt (``select_related`` written out: core.sql), from ``row`` when a statement has read
    them already (``queue_statements().clip_with_prompt``'s columns)."""
    if row is None:
        with prepared_cursor() as cursor:
            cursor.execute(queue_statements().clip_with_prompt, [clip_id])
            row = cursor.fetchone()
    n = sql.width(Clip)
    clip = sql.from_row(Clip, row[:n])
    clip.prompt = sql.from_row(Prompt, row[n:])
    return clip


def clip_with_prompt_sql() -> str:
    """The statement :func:`clip_with_prompt` reads (the clip's id its one parameter), for a statement that reads
    it along with its own work."""
    return queue_statements().clip_with_prompt


def validation_pick_for(*, contributor: Contributor, now: datetime | None = None) -> int | None:
    """A random pending clip this trustee may judge: not theirs, not voted on, skipped or reported by them,
    not held by another trustee's open assignment, and not contested past ``offer_max_votes`` counted votes
    (speech/trust.py says why).

    Random among the eligible clips with the most counted votes: a clip needs six unanimous trustee votes,
    and uniformly random assignment spreads a small trustee pool's quota so thin over a growing backlog that
    almost nothing gets decided (benchmarks/trust_sim.py measured it). Finishing started clips first keeps
    the choice the server's and unpredictable to a voter, and decides clips sooner; one holder at a time
    keeps a clip from collecting more votes than it needs.

    Two index walks on (status, votes_counted, queue_key) in one statement, no sort: the highest count that
    has an eligible clip, then the next few eligible clips at that count from a random point of the clips' random keys
    (wrapping round), one of which is drawn uniformly. A level of up to ``PICK_AMONG`` clips is drawn from
    exactly uniformly; in a larger one a clip's chance also follows the gap before its key, which the draw
    among several evens out: random and unpredictable to the voter, if not exactly uniform. Clips are locked
    as they are picked, and a clip another trustee is being handed right now is skipped, so two trustees
    asking at once get different clips (PostgreSQL)."""
    now = now or timezone.now()
    me = contributor.pk
    eligible = [trust_params().offer_max_votes, me, me, me, me, connection.ops.adapt_datetimefield_value(now), me]
    statements = queue_statements()
    with prepared_cursor() as cursor:
        start = new_queue_key()
        cursor.execute(statements.from_key, [*eligible, *eligible, start])
        candidates = [row[0] for row in cursor.fetchall()]
        if len(candidates) < PICK_AMONG:  # wrap round to the smallest keys
            cursor.execute(statements.before_key, [*eligible, *eligible, start, PICK_AMONG - len(candidates)])
            candidates += [row[0] for row in cursor.fetchall()]
        if not candidates:
            # Nothing eligible, or every clip at that count is being handed to someone else right now: the
            # next most-voted ones.
            cursor.execute(statements.most_voted, eligible)
            rows = cursor.fetchall()
            candidates = [clip_id for clip_id, votes in rows if votes == rows[0][1]]
    return secrets.choice(candidates) if candidates else None


@dataclass(frozen=True)
class _QueueStatements:
    from_key: str  # the top level's next clips from a random key
    before_key: str  # the same level's first clips, to wrap round
    most_voted: str  # the most-voted eligible clips whatever their key
    clip_with_prompt: str  # a clip and its prompt (select_related written out)


@functools.cache
def queue_statements() -> _QueueStatements:
    """The queue's SQL, written out once: the ORM compiles these Exists-heavy statements in more time than
    PostgreSQL runs them (benchmarks/vote_api.py), on every request."""
    table = {model: model._meta.db_table for model in (Clip, Vote, ClipSkip, ClipReport, ValidationAssignment)}

    def eligible(x: str) -> str:  # parameters: cap, me, me, me, me, now, me
        # Table names and constants only are formatted in; every value is a parameter.
        return (
            f"{x}.status = '{ClipStatus.PENDING}' AND {x}.votes_counted < %s AND {x}.contributor_id <> %s"  # noqa: S608
            f" AND NOT EXISTS (SELECT 1 FROM {table[Vote]} v WHERE v.clip_id = {x}.id AND v.voter_id = %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {table[ClipSkip]} s WHERE s.clip_id = {x}.id AND s.contributor_id = %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {table[ClipReport]} r WHERE r.clip_id = {x}.id AND r.reporter_id = %s)"
            f" AND NOT EXISTS (SELECT 1 FROM {table[ValidationAssignment]} a WHERE a.clip_id = {x}.id"
            f" AND a.outcome = '{AssignmentOutcome.OPEN}' AND a.expires_at > %s AND a.trustee_id <> %s)"
        )

    # Locked as picked; a clip being handed to another trustee right now is skipped (SQLite has no row locks:
    # its writers are serialised already).
    lock = " FOR UPDATE OF c SKIP LOCKED" if connection.vendor == "postgresql" else ""
    top = f"(SELECT x.votes_counted FROM {table[Clip]} x WHERE {eligible('x')} ORDER BY x.votes_counted DESC LIMIT 1)"  # noqa: S608
    level = f"SELECT c.id FROM {table[Clip]} c WHERE {eligible('c')} AND c.votes_counted = {top}"  # noqa: S608
    return _QueueStatements(
        from_key=f"{level} AND c.queue_key >= %s ORDER BY c.queue_key LIMIT {PICK_AMONG}{lock}",
        before_key=f"{level} AND c.queue_key < %s ORDER BY c.queue_key LIMIT %s{lock}",
        most_voted=(
            f"SELECT c.id, c.votes_counted FROM {table[Clip]} c WHERE {eligible('c')}"  # noqa: S608
            f" ORDER BY c.votes_counted DESC, c.queue_key LIMIT {PICK_AMONG}{lock}"
        ),
        clip_with_prompt=(
            f"SELECT {sql.columns(Clip, 'c')}, {sql.columns(Prompt, 'p')} FROM {table[Clip]} c"  # noqa: S608
            f" JOIN {Prompt._meta.db_table} p ON p.id = c.prompt_id WHERE c.id = %s"
        ),
    )


@dataclass(frozen=True)
class TrustExplanation:
    """What gives a contributor their trust: their clips' statuses and the formula's reading of them."""

    summary: str
    clips: list[Clip]  # their own clips, decided first
    votes_cast: int
    votes_on_valid: int
    quota_left: int


def trust_explanation(*, contributor: Contributor) -> TrustExplanation:
    params = trust_params()
    clips = list(
        Clip.objects.filter(contributor=contributor, status_fixed=False).order_by(
            Case(When(status=ClipStatus.PENDING, then=Value(1)), default=Value(0), output_field=IntegerField()), "id"
        )
    )
    counts = {status: sum(clip.status == status for clip in clips) for status in ClipStatus.values}
    valid, invalid, discarded = counts["valid"], counts["invalid"], counts["discarded"]
    if contributor.is_founding_trustee:
        summary = "A founding trustee: trust 1 whatever their clips."
    elif params.preset == "proposal":
        formula = f"max(0, (valid {valid} - invalid {invalid}) / clips {len(clips)})"
        summary = f"Proposal preset: {formula} = {contributor.trust:.3f}"
    else:
        summary = (
            f"Wilson lower bound of {valid} valid among {valid + invalid + discarded} decided clips (invalid "
            f"{invalid}, discarded {discarded}; {counts['pending']} pending do not count) = {contributor.trust:.3f}"
        )
    verdict = "a trustee" if contributor.is_trustee else "not a trustee"
    summary += f"; {verdict} (trustees need more than {params.min_trust:g}, or to be founders)."
    votes = Vote.objects.filter(voter=contributor)
    return TrustExplanation(
        summary=summary,
        clips=clips,
        votes_cast=votes.count(),
        votes_on_valid=votes.filter(clip__status=ClipStatus.VALID).count(),
        quota_left=vote_quota_left(contributor=contributor),
    )


def proposals_to_review_for(*, reviewer: Contributor, limit: int = 10) -> list[SentenceProposal]:
    """Open proposals this trustee did not write and has not reviewed, oldest first (the queue drains in order)."""
    if not reviewer.is_trustee:
        return []
    return list(
        SentenceProposal.objects.filter(status=ProposalStatus.OPEN)
        .exclude(author=reviewer)
        .exclude(reviews__reviewer=reviewer)
        .order_by("created_at", "id")[:limit]
    )


def proposals_of(*, author: Contributor, limit: int = 50) -> list[SentenceProposal]:
    """A volunteer's proposals, newest first, with their review counts."""
    return list(
        SentenceProposal.objects.filter(author=author)
        .annotate(
            approvals=Count("reviews", filter=Q(reviews__approve=True)),
            rejections=Count("reviews", filter=Q(reviews__approve=False)),
        )
        .order_by("-created_at", "-id")[:limit]
    )
