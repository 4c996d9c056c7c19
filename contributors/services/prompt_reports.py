"""A reader skips or reports a sentence while recording; operators resolve the reports."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from contributors.conf import sentence_rules
from contributors.models import (
    Contributor,
    Prompt,
    PromptReport,
    PromptReportReason,
    PromptSkip,
    ReportResolution,
)
from core.errors import ServiceError
from core.inputs import parse_id, report_note


def _prompt_for_reader(prompt_id: object) -> Prompt:
    pk = parse_id(prompt_id)  # ASCII digits only: the URL takes any text
    prompt = Prompt.objects.filter(pk=pk).first() if pk is not None else None
    if prompt is None:
        raise ServiceError("prompt_unknown", f"There is no prompt with id {prompt_id!r}.", status_code=404)
    return prompt


def prompt_skip(*, contributor: Contributor, prompt_id: object) -> PromptSkip:
    """Pass on a sentence: it is not offered to this reader again. Skipping twice is the same skip."""
    prompt = _prompt_for_reader(prompt_id)
    skip, _ = PromptSkip.objects.get_or_create(prompt=prompt, contributor=contributor)
    return skip


PROMPT_NOTE_MAX = 500


def prompt_report(*, reporter: Contributor, prompt_id: object, reason: str, note: str = "") -> PromptReport:
    """Flag a sentence for the operators; it is not offered to the reporter again. When readers' open reports
    on it reach ``REPORTS_TO_HOLD`` distinct people, the prompt stops being served until an operator decides."""
    if reason not in PromptReportReason.values:
        raise ServiceError("reason_invalid", f"A reason is one of {', '.join(PromptReportReason.values)}.")
    note = report_note(note, limit=PROMPT_NOTE_MAX)
    if reason == PromptReportReason.OTHER and not note:
        raise ServiceError("note_required", "Say what is wrong with the sentence.")
    prompt = _prompt_for_reader(prompt_id)
    with transaction.atomic():
        # The prompt's row is the lock: two reports arriving together both see the other's when counting.
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        try:
            with transaction.atomic():
                report = PromptReport.objects.create(prompt=prompt, reporter=reporter, reason=reason, note=note)
        except IntegrityError as exc:
            raise ServiceError("report_duplicate", "You have already reported this sentence.", status_code=409) from exc
        reporters = (
            PromptReport.objects.filter(prompt=prompt, resolution=ReportResolution.OPEN)
            .values("reporter")
            .distinct()
            .count()
        )
        if reporters >= sentence_rules().reports_to_hold and not prompt.held_for_review:
            Prompt.objects.filter(pk=prompt.pk).update(held_for_review=True)
    return report


def prompt_reports_resolve(*, prompt_ids: Iterable[int], retire: bool) -> int:
    """An operator's decision on reported prompts: dismiss the open reports (the prompt is served again) or
    retire the prompt (no new recordings; its clips stay). Returns how many prompts were decided."""
    ids = sorted(set(prompt_ids))
    resolution = ReportResolution.RETIRED if retire else ReportResolution.DISMISSED
    with transaction.atomic():
        prompts = Prompt.objects.select_for_update().filter(pk__in=ids)
        decided = len(prompts)
        changes: dict[str, bool] = {"held_for_review": False}
        if retire:
            changes["is_active"] = False
        prompts.update(**changes)
        PromptReport.objects.filter(prompt_id__in=ids, resolution=ReportResolution.OPEN).update(
            resolution=resolution, resolved_at=timezone.now()
        )
    return decided
