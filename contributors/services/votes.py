"""Casting votes, skipping and reporting clips: the trustee's side of validation, on assigned clips only."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipReport,
    ClipSkip,
    ClipStatus,
    Contributor,
    ReportReason,
    Verdict,
    Vote,
)
from contributors.selectors import vote_quota_left
from contributors.services.assignments import assignment_close, assignment_for_action
from contributors.services.trust import trust_after_vote, trust_write
from core.errors import ServiceError


@dataclass(frozen=True)
class VoteOutcome:
    vote: Vote
    clip: Clip
    quota_left: int


def _clip_id(clip_id: object) -> int | None:
    try:
        return int(str(clip_id))
    except ValueError:
        return None


def _clip_for_trustee(*, voter: Contributor, clip_id: object) -> Clip:
    """The access rules for acting on a clip, one condition per line (Zulip's access_* style); the clip
    comes back locked."""
    pk = _clip_id(clip_id)
    clip = Clip.objects.select_for_update().filter(pk=pk).first() if pk is not None else None
    if clip is None:
        raise ServiceError("clip_unknown", f"There is no clip with id {clip_id!r}.", status_code=404)
    if not voter.is_trustee:
        raise ServiceError("not_trustee", "Only trustees validate clips.", status_code=403)
    if clip.contributor_id == voter.pk:
        raise ServiceError("vote_own_clip", "You cannot vote on your own recording.", status_code=403)
    if clip.status != ClipStatus.PENDING:
        raise ServiceError(
            "clip_not_pending", f"This clip is already {clip.status}; it takes no more votes.", status_code=409
        )
    return clip


def vote_cast(*, voter: Contributor, clip_id: object, verdict: str) -> VoteOutcome:
    """Record a trustee's verdict on the clip assigned to them and bring statuses and trust up to date.

    Refused: a malformed verdict (400), an unknown clip (404), a non-trustee or one's own clip (403), a
    clip no longer pending, a second vote, or a clip not assigned to the voter (or no longer: expired)
    (409, also when two arrive at once), past the quota (429)."""
    if verdict not in Verdict.values:
        raise ServiceError("verdict_invalid", f"A verdict is one of {', '.join(Verdict.values)}.")

    def cast(exclusive: bool) -> tuple[Vote, Clip, int]:
        # Locking the voter's row makes the quota check and the insert one step for this voter.
        locked_voter = Contributor.objects.select_for_update().get(pk=voter.pk)
        clip = _clip_for_trustee(voter=locked_voter, clip_id=clip_id)
        if Vote.objects.filter(clip=clip, voter=locked_voter).exists():
            raise ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409)
        assignment = assignment_for_action(trustee=locked_voter, clip=clip)
        quota_left = vote_quota_left(contributor=locked_voter)
        if quota_left <= 0:
            raise ServiceError(
                "quota_exhausted",
                "You have used the votes your recordings earned; record more to validate more.",
                status_code=429,
                quota_left=0,
            )
        try:
            with transaction.atomic():
                vote = Vote.objects.create(clip=clip, voter=locked_voter, verdict=verdict)
        except IntegrityError as exc:
            raise ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409) from exc
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.VOTED)
        trust_after_vote(clip=clip, exclusive=exclusive)
        return vote, clip, quota_left - 1

    vote, clip, quota_left = trust_write(cast)
    clip.refresh_from_db()
    return VoteOutcome(vote=vote, clip=clip, quota_left=quota_left)


def clip_skip(*, contributor: Contributor, clip_id: object) -> None:
    """Pass on the assigned clip: it is not offered to this trustee again, and the next one is."""
    with transaction.atomic():
        clip = _clip_for_trustee(voter=contributor, clip_id=clip_id)
        assignment = assignment_for_action(trustee=contributor, clip=clip)
        ClipSkip.objects.get_or_create(clip=clip, contributor=contributor)
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.SKIPPED)


def clip_report(*, reporter: Contributor, clip_id: object, reason: str, note: str = "") -> ClipReport:
    """Flag the assigned clip for the operators (wrong text, offensive, personal data...); one report per
    trustee; the clip is not offered to them again."""
    if reason not in ReportReason.values:
        raise ServiceError("reason_invalid", f"A reason is one of {', '.join(ReportReason.values)}.")
    with transaction.atomic():
        clip = _clip_for_trustee(voter=reporter, clip_id=clip_id)
        if ClipReport.objects.filter(clip=clip, reporter=reporter).exists():
            raise ServiceError("report_duplicate", "You have already reported this clip.", status_code=409)
        assignment = assignment_for_action(trustee=reporter, clip=clip)
        report = ClipReport.objects.create(clip=clip, reporter=reporter, reason=reason, note=note[:1000])
        assignment_close(assignment=assignment, outcome=AssignmentOutcome.REPORTED)
        return report
