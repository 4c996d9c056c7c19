"""Casting votes, skipping and reporting clips: the trustee's side of validation."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from contributors.models import Clip, ClipReport, ClipSkip, ClipStatus, Contributor, ReportReason, Verdict, Vote
from contributors.selectors import vote_quota_left
from contributors.services.trust import trust_after_vote, trust_lock
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


def _clip_for_trustee(*, voter: Contributor, clip_id: object, lock: bool) -> Clip:
    """The access rules for acting on a clip, one condition per line (Zulip's access_* style)."""
    pk = _clip_id(clip_id)
    clips = Clip.objects.select_for_update() if lock else Clip.objects
    clip = clips.filter(pk=pk).first() if pk is not None else None
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
    """Record a trustee's verdict and bring statuses and trust up to date.

    Refused: a malformed verdict (400), an unknown clip (404), a non-trustee or one's own clip (403), a
    clip no longer pending or a second vote (409, also when two arrive at once), past the quota (429)."""
    if verdict not in Verdict.values:
        raise ServiceError("verdict_invalid", f"A verdict is one of {', '.join(Verdict.values)}.")
    with transaction.atomic():
        trust_lock()
        # Locking the voter's row makes the quota check and the insert one step for this voter.
        voter = Contributor.objects.select_for_update().get(pk=voter.pk)
        clip = _clip_for_trustee(voter=voter, clip_id=clip_id, lock=True)
        if Vote.objects.filter(clip=clip, voter=voter).exists():
            raise ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409)
        quota_left = vote_quota_left(contributor=voter)
        if quota_left <= 0:
            raise ServiceError(
                "quota_exhausted",
                "You have cast as many votes as you have submitted clips; record more to validate more.",
                status_code=429,
                quota_left=0,
            )
        try:
            with transaction.atomic():
                vote = Vote.objects.create(clip=clip, voter=voter, verdict=verdict)
        except IntegrityError as exc:
            raise ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409) from exc
        trust_after_vote(clip=clip)
    clip.refresh_from_db()
    return VoteOutcome(vote=vote, clip=clip, quota_left=quota_left - 1)


def clip_skip(*, contributor: Contributor, clip_id: object) -> None:
    """Pass on a clip: it is not offered to this trustee again. Skipping twice is harmless."""
    clip = _clip_for_trustee(voter=contributor, clip_id=clip_id, lock=False)
    ClipSkip.objects.get_or_create(clip=clip, contributor=contributor)


def clip_report(*, reporter: Contributor, clip_id: object, reason: str, note: str = "") -> ClipReport:
    """Flag a clip for the operators (wrong text, offensive, personal data...); one report per trustee."""
    if reason not in ReportReason.values:
        raise ServiceError("reason_invalid", f"A reason is one of {', '.join(ReportReason.values)}.")
    clip = _clip_for_trustee(voter=reporter, clip_id=clip_id, lock=False)
    try:
        with transaction.atomic():
            return ClipReport.objects.create(clip=clip, reporter=reporter, reason=reason, note=note[:1000])
    except IntegrityError as exc:
        raise ServiceError("report_duplicate", "You have already reported this clip.", status_code=409) from exc
