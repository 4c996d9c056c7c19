"""Validation assignments: the server hands each trustee one pending clip at a time and records it.

A vote, skip or report is accepted only on the clip the trustee holds an open, unexpired assignment for,
and a pending clip's audio is served only to its author, staff and that trustee: the client never chooses
what it judges or hears. ``validation/next`` returns the open assignment again while it lasts (two tabs
see the same clip), so that a reload does not spend the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from contributors.models import AssignmentOutcome, Clip, ClipStatus, Contributor, ValidationAssignment
from contributors.selectors import validation_next_for, vote_quota_left
from core.errors import ServiceError


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
        trustee = Contributor.objects.select_for_update().get(pk=trustee.pk)
        if not trustee.is_trustee:
            raise ServiceError("not_trustee", "Only trustees validate clips.", status_code=403)
        now = timezone.now()
        current = (
            ValidationAssignment.objects.select_related("clip__prompt")
            .filter(trustee=trustee, outcome=AssignmentOutcome.OPEN)
            .first()
        )
        quota_left = vote_quota_left(contributor=trustee)
        if current is not None:
            if current.expires_at > now and current.clip.status == ClipStatus.PENDING and quota_left > 0:
                return ValidationOffer(clip=current.clip, assignment=current, quota_left=quota_left, reason="")
            expired = current.expires_at <= now
            _close(current, AssignmentOutcome.EXPIRED if expired else AssignmentOutcome.WITHDRAWN, now=now)
        if quota_left <= 0:
            return ValidationOffer(clip=None, assignment=None, quota_left=0, reason="quota_exhausted")
        clip = validation_next_for(contributor=trustee, now=now)
        if clip is None:
            return ValidationOffer(clip=None, assignment=None, quota_left=quota_left, reason="queue_empty")
        try:
            with transaction.atomic():
                assignment = ValidationAssignment.objects.create(
                    trustee=trustee, clip=clip, expires_at=now + assignment_ttl()
                )
        except IntegrityError as exc:  # cannot happen under the row lock; say so rather than 500
            raise ServiceError("assignment_conflict", "Ask for a clip again.", status_code=409) from exc
        return ValidationOffer(clip=clip, assignment=assignment, quota_left=quota_left, reason="")


def assignment_for_action(*, trustee: Contributor, clip: Clip, now: datetime | None = None) -> ValidationAssignment:
    """The trustee's open, unexpired assignment on ``clip``, locked; 409 ``clip_not_assigned`` otherwise."""
    now = now or timezone.now()
    assignment = (
        ValidationAssignment.objects.select_for_update()
        .filter(trustee=trustee, clip=clip, outcome=AssignmentOutcome.OPEN)
        .first()
    )
    if assignment is None:
        raise ServiceError(
            "clip_not_assigned",
            "This clip is not assigned to you; ask validation/next for the clip to judge.",
            status_code=409,
        )
    if assignment.expires_at <= now:
        _close(assignment, AssignmentOutcome.EXPIRED, now=now)
        raise ServiceError(
            "clip_not_assigned",
            "Your assignment on this clip has expired; ask validation/next for a clip.",
            status_code=409,
            expired=True,
        )
    return assignment


def assignment_close(*, assignment: ValidationAssignment, outcome: str) -> None:
    _close(assignment, outcome, now=timezone.now())


def _close(assignment: ValidationAssignment, outcome: str, *, now: datetime) -> None:
    assignment.outcome = outcome
    assignment.closed_at = now
    assignment.save(update_fields=["outcome", "closed_at"])
