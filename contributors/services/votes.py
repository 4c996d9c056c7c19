"""Casting votes on clips."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from contributors.models import Clip, Contributor, Verdict, Vote
from core.errors import ServiceError


def vote_cast(*, voter: Contributor, clip_id: object, verdict: str) -> Vote:
    """Record one verdict. Nobody votes on their own clip; a second vote on a clip is refused (409),
    also when two arrive at once (the unique constraint decides)."""
    if verdict not in Verdict.values:
        raise ServiceError("verdict_invalid", f"A verdict is one of {', '.join(Verdict.values)}.")
    try:
        pk = int(str(clip_id))
    except ValueError:
        pk = None
    clip = Clip.objects.filter(pk=pk).first() if pk is not None else None
    if clip is None:
        raise ServiceError("clip_unknown", f"There is no clip with id {clip_id!r}.", status_code=404)
    if clip.contributor_id == voter.pk:
        raise ServiceError("vote_own_clip", "You cannot vote on your own recording.", status_code=403)
    try:
        with transaction.atomic():
            return Vote.objects.create(clip=clip, voter=voter, verdict=verdict)
    except IntegrityError as exc:
        raise ServiceError("vote_duplicate", "You have already voted on this clip.", status_code=409) from exc
