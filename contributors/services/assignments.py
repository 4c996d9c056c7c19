"""Validation assignments: the server hands each trustee one pending clip at a time and records it.

A vote, skip or report is accepted only on the clip the trustee holds an open, unexpired assignment for,
and a pending clip's audio is served only to its author, staff and that trustee: the client never chooses
what it judges or hears. ``validation/next`` returns the open assignment again while it lasts (two tabs
see the same clip), so that a reload does not spend the queue.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contributors.models import AssignmentOutcome, Clip, ClipStatus, Contributor, ValidationAssignment
from contributors.selectors import (
    clip_with_prompt,
    clip_with_prompt_sql,
    contributor_locked_with_quota,
    validation_pick_for,
)
from core import sql
from core.errors import ServiceError
from core.sql import prepared_cursor


def assignment_ttl() -> timedelta:
    """How long a trustee holds an assigned clip (settings.VALIDATION_ASSIGNMENT_TTL_S, 10 minutes)."""
    return timedelta(seconds=getattr(settings, "VALIDATION_ASSIGNMENT_TTL_S", 600))


@dataclass(frozen=True)
class ValidationOffer:
    """What ``validation/next`` answers: a clip and its assignment, or why there is none."""

    clip: Clip | None
    assignment: ValidationAssignment | None
    quota_left: int
    reason: str  # "" with a clip; "quota_exhausted" or "queue_empty" without one


def validation_assign(*, trustee: Contributor) -> ValidationOffer:
    """The trustee's open assignment if it still holds, else a new one on the clip the queue picks.

    Refused with 403 for a non-trustee. At quota 0 no clip is served (``quota_exhausted``)."""
    with transaction.atomic():
        # The trustee's row lock makes "look for an open assignment, else open one" one step per trustee.
        trustee, quota_left = contributor_locked_with_quota(contributor_id=trustee.pk)
        if not trustee.is_trustee:
            raise ServiceError("not_trustee", "Only trustees validate clips.", status_code=403)
        now = timezone.now()
        current = (
            ValidationAssignment.objects.select_related("clip__prompt")
            .filter(trustee=trustee, outcome=AssignmentOutcome.OPEN)
            .first()
        )
        if current is not None:
            if current.expires_at > now and current.clip.status == ClipStatus.PENDING and quota_left > 0:
                return ValidationOffer(clip=current.clip, assignment=current, quota_left=quota_left, reason="")
            expired = current.expires_at <= now
            _close(current, AssignmentOutcome.EXPIRED if expired else AssignmentOutcome.WITHDRAWN, now=now)
        return _offer_new(trustee=trustee, quota_left=quota_left, now=now)


def validation_assign_next(
    *, trustee: Contributor, quota_left: int, candidates: list[int] | None = None
) -> ValidationOffer | None:
    """The next assignment, handed out with a vote's answer so that judging a clip is one request: call
    inside the vote's transaction, with the trustee's row locked and their assignment just closed. None
    when the trustee is no longer a trustee (their ``validation/next`` then says why). ``candidates``: the
    clips the queue's walk (``validation_pick_for``'s first statements) found in this transaction, when the
    vote's own call ran it; none or empty: the walk runs here."""
    if not trustee.is_trustee:
        return None
    return _offer_new(trustee=trustee, quota_left=quota_left, now=timezone.now(), candidates=candidates)


_PICK_ATTEMPTS = 3  # another trustee took the picked clip between the pick and the insert: pick again


def _offer_new(
    *, trustee: Contributor, quota_left: int, now: datetime, candidates: list[int] | None = None
) -> ValidationOffer:
    if quota_left <= 0:
        return ValidationOffer(clip=None, assignment=None, quota_left=0, reason="quota_exhausted")
    for attempt in range(_PICK_ATTEMPTS):
        if attempt == 0 and candidates:
            clip_id: int | None = secrets.choice(candidates)  # as validation_pick_for draws
        else:
            clip_id = validation_pick_for(contributor=trustee, now=now)
        if clip_id is None:
            break
        opened = _assignment_open(trustee=trustee, clip_id=clip_id, now=now)
        if opened is not None:
            clip, assignment = opened
            return ValidationOffer(clip=clip, assignment=assignment, quota_left=quota_left, reason="")
    return ValidationOffer(clip=None, assignment=None, quota_left=quota_left, reason="queue_empty")


def _assignment_open(*, trustee: Contributor, clip_id: int, now: datetime) -> tuple[Clip, ValidationAssignment] | None:
    """Open an assignment on the clip and read the clip with its prompt, or None if another trustee holds it: at
    most one open assignment per clip is a unique index, so two trustees whose picks raced cannot both hold it.
    An expired one left open is closed first (its holder can no longer act on it)."""
    opened = _assignment_insert(trustee=trustee, clip_id=clip_id, now=now)
    if opened is None:
        stale = ValidationAssignment.objects.filter(
            clip_id=clip_id, outcome=AssignmentOutcome.OPEN, expires_at__lte=now
        )
        if stale.update(outcome=AssignmentOutcome.EXPIRED, closed_at=now):
            opened = _assignment_insert(trustee=trustee, clip_id=clip_id, now=now)
    return opened


_ASSIGNMENT_INSERT = (
    f"INSERT INTO {ValidationAssignment._meta.db_table} (trustee_id, clip_id, created_at, expires_at, outcome)"  # noqa: S608
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)


def _assignment_insert(
    *, trustee: Contributor, clip_id: int, now: datetime
) -> tuple[Clip, ValidationAssignment] | None:
    """INSERT ... ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike): a conflict leaves the transaction usable,
    where an IntegrityError would need a savepoint round trip on every assignment. On PostgreSQL the same
    statement reads the clip and its prompt (a round trip less); elsewhere a second one does."""
    expires_at = now + assignment_ttl()
    values = [trustee.pk, clip_id, *(connection.ops.adapt_datetimefield_value(t) for t in (now, expires_at))]
    values.append(AssignmentOutcome.OPEN.value)
    clip_read = clip_with_prompt_sql()
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            # The clip's row is locked by the pick (FOR UPDATE), so it reads as it was drawn.
            cursor.execute(
                f"WITH opened AS ({_ASSIGNMENT_INSERT}) SELECT opened.id, read.* FROM opened, ({clip_read}) AS read",  # noqa: S608
                [*values, clip_id],
            )
            row = cursor.fetchone()
            if row is None:
                return None
            assignment_id, clip = row[0], clip_with_prompt(clip_id, row=row[1:])
        else:
            cursor.execute(_ASSIGNMENT_INSERT, values)
            row = cursor.fetchone()
            if row is None:
                return None
            assignment_id, clip = row[0], clip_with_prompt(clip_id)
    assignment = ValidationAssignment(
        pk=assignment_id,
        trustee=trustee,
        clip=clip,
        created_at=now,
        expires_at=expires_at,
        outcome=AssignmentOutcome.OPEN,
    )
    assignment._state.adding = False
    return clip, assignment


def assignment_for_action(*, trustee: Contributor, clip: Clip, now: datetime | None = None) -> ValidationAssignment:
    """The trustee's open, unexpired assignment on ``clip``, locked; 409 ``clip_not_assigned`` otherwise."""
    now = now or timezone.now()
    with prepared_cursor() as cursor:
        cursor.execute(_open_assignment_sql(), [trustee.pk, clip.pk, AssignmentOutcome.OPEN.value])
        row = cursor.fetchone()
    if row is None:
        raise ServiceError(
            "clip_not_assigned",
            "This clip is not assigned to you; ask validation/next for the clip to judge.",
            status_code=409,
        )
    return assignment_unexpired(sql.from_row(ValidationAssignment, row), now=now)


def assignment_unexpired(assignment: ValidationAssignment, *, now: datetime | None = None) -> ValidationAssignment:
    """The open ``assignment``, locked, if it has not expired; closed as expired and 409 otherwise."""
    now = now or timezone.now()
    if assignment.expires_at <= now:
        _close(assignment, AssignmentOutcome.EXPIRED, now=now)
        raise ServiceError(
            "clip_not_assigned",
            "Your assignment on this clip has expired; ask validation/next for a clip.",
            status_code=409,
            expired=True,
        )
    return assignment


@functools.cache
def _open_assignment_sql() -> str:
    """The trustee's open assignment on a clip, locked (written out once: core.sql)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT {sql.columns(ValidationAssignment, 'a')} FROM {ValidationAssignment._meta.db_table} a"  # noqa: S608
        f" WHERE a.trustee_id = %s AND a.clip_id = %s AND a.outcome = %s ORDER BY a.id DESC LIMIT 1{lock}"
    )


def assignment_close(*, assignment: ValidationAssignment, outcome: str) -> None:
    _close(assignment, outcome, now=timezone.now())


def _close(assignment: ValidationAssignment, outcome: str, *, now: datetime) -> None:
    assignment.outcome = outcome
    assignment.closed_at = now
    with prepared_cursor() as cursor:
        cursor.execute(
            f"UPDATE {ValidationAssignment._meta.db_table} SET outcome = %s, closed_at = %s WHERE id = %s",  # noqa: S608
            [outcome, connection.ops.adapt_datetimefield_value(now), assignment.pk],
        )
