"""Volunteers propose sentences; trustees review them; two approvals make a prompt (Common Voice's Write/Review)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from contributors.conf import sentence_rules
from contributors.models import (
    Contributor,
    Prompt,
    PromptType,
    ProposalReview,
    ProposalStatus,
    SentenceProposal,
)
from contributors.sentences import sentence_text_check
from contributors.services.prompts import lexicon_as_mapping, prompt_create
from core.errors import ServiceError
from core.inputs import parse_id
from speech.pronunciation import MissingPronunciations, pronounce
from speech.text import normalise_words

PROPOSAL_SOURCE = "proposal"  # Prompt.source of a sentence a volunteer wrote and trustees accepted


def _duplicate() -> ServiceError:
    return ServiceError(
        "sentence_duplicate", "That sentence is already a prompt or waiting for review.", status_code=409
    )


def _check_daily_quota(author: Contributor, per_day: int) -> None:
    since = timezone.now() - timedelta(days=1)
    if SentenceProposal.objects.filter(author=author, created_at__gte=since).count() >= per_day:
        raise ServiceError(
            "proposal_quota",
            f"You have proposed {per_day} sentences in the last 24 hours, the most a day; "
            "thank you — come back tomorrow for more.",
            status_code=429,
            retry_after_s=3600,
        )


def sentence_propose(*, author: Contributor, text: object) -> SentenceProposal:
    """Check a volunteer's sentence (shape, every word pronounceable by the lexicon or CMUdict, not a duplicate
    of a prompt or of an open proposal after normalisation) and queue it for review."""
    if not author.has_consented:
        raise ServiceError(
            "consent_required",
            "Proposed sentences are published under CC0 with the corpus; give your consent in your profile first.",
            status_code=403,
        )
    if not isinstance(text, str):
        raise ServiceError("sentence_empty", "Write a sentence to propose.")
    rules = sentence_rules()
    _check_daily_quota(author, rules.proposals_per_day)  # before the checks below, which cost more
    shown = sentence_text_check(text, rules)
    words = normalise_words(shown)
    try:
        phones = pronounce(words, lexicon_as_mapping())
    except MissingPronunciations as exc:
        raise ServiceError(
            "sentence_unpronounceable",
            f"Our pronunciation dictionary does not know: {', '.join(exc.words)}. Check the spelling, or use "
            "more common words.",
            missing_words=exc.words,
        ) from exc
    normalised = " ".join(words)
    if Prompt.objects.filter(normalised_text=normalised).exists():
        raise _duplicate()
    try:
        with transaction.atomic():
            # Counted again under the author's row lock: two proposals sent at once both passed the count above.
            Contributor.objects.select_for_update().filter(pk=author.pk).first()
            _check_daily_quota(author, rules.proposals_per_day)
            return SentenceProposal.objects.create(
                author=author, text=shown, normalised_text=normalised, words=words, phones=phones
            )
    except IntegrityError as exc:  # an open proposal of the same words (the partial unique constraint)
        raise _duplicate() from exc


@dataclass(frozen=True)
class ReviewOutcome:
    proposal: SentenceProposal
    approvals: int
    rejections: int


def proposal_review(*, reviewer: Contributor, proposal_id: object, approve: object) -> ReviewOutcome:
    """A trustee approves or rejects someone else's open proposal. ``APPROVALS_TO_ACCEPT`` approvals make it a
    prompt (diverse, source "proposal"); ``REJECTIONS_TO_RETIRE`` rejections close it."""
    if not isinstance(approve, bool):
        raise ServiceError("verdict_invalid", "Send approve: true or false.")
    pk = parse_id(proposal_id)
    with transaction.atomic():
        # Locked: the review that reaches the threshold creates the prompt once, even with two reviewers at once.
        proposal = SentenceProposal.objects.select_for_update().filter(pk=pk).first() if pk is not None else None
        if proposal is None:
            raise ServiceError("proposal_unknown", f"There is no proposal with id {proposal_id!r}.", status_code=404)
        if not reviewer.is_trustee:
            raise ServiceError("not_trustee", "Only trustees review proposed sentences.", status_code=403)
        if proposal.author_id == reviewer.pk:
            raise ServiceError("review_own", "You cannot review a sentence you proposed.", status_code=403)
        if proposal.status != ProposalStatus.OPEN:
            raise ServiceError("proposal_closed", "This proposal has already been decided.", status_code=409)
        if ProposalReview.objects.filter(proposal=proposal, reviewer=reviewer).exists():
            raise ServiceError("review_duplicate", "You have already reviewed this sentence.", status_code=409)
        ProposalReview.objects.create(proposal=proposal, reviewer=reviewer, approve=approve)
        approvals = proposal.reviews.filter(approve=True).count()
        rejections = proposal.reviews.filter(approve=False).count()
        rules = sentence_rules()
        if approvals >= rules.approvals_to_accept:
            prompt, _ = prompt_create(text=proposal.text, prompt_type=PromptType.DIVERSE, source=PROPOSAL_SOURCE)
            proposal.prompt = prompt
            proposal.status = ProposalStatus.ACCEPTED
        elif rejections >= rules.rejections_to_retire:
            proposal.status = ProposalStatus.REJECTED
        if proposal.status != ProposalStatus.OPEN:
            proposal.decided_at = timezone.now()
            proposal.save(update_fields=["status", "prompt", "decided_at"])
    return ReviewOutcome(proposal=proposal, approvals=approvals, rejections=rejections)
