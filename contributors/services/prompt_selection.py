"""Prompt import from a file, and the greedy choice of prompts that covers the most diphones (TIMIT's SX idea)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from django.db import transaction

from contributors.models import Prompt, PromptType
from contributors.services.prompts import lexicon_as_mapping, prompt_create
from core.errors import ServiceError
from speech.phones import PHONES

Diphone = tuple[str, str]
DIPHONES_POSSIBLE = len(PHONES) * len(PHONES)


def diphones_of(phones: Sequence[Sequence[str]]) -> set[Diphone]:
    """The phone pairs of a sentence read without pause: inside words and across word boundaries."""
    flat = [p for word in phones for p in word]
    return set(pairwise(flat))


@dataclass(frozen=True)
class Coverage:
    phones: int
    diphones: int

    def describe(self) -> str:
        return (
            f"{self.phones}/{len(PHONES)} phones, {self.diphones}/{DIPHONES_POSSIBLE} diphones "
            f"({100 * self.diphones / DIPHONES_POSSIBLE:.1f}%)"
        )


def coverage_of(sentences: Iterable[Sequence[Sequence[str]]]) -> Coverage:
    phones: set[str] = set()
    pairs: set[Diphone] = set()
    for sentence in sentences:
        phones.update(p for word in sentence for p in word)
        pairs |= diphones_of(sentence)
    return Coverage(phones=len(phones), diphones=len(pairs))


def greedy_cover(candidates: Sequence[Sequence[Sequence[str]]], *, target: int, covered: set[Diphone]) -> list[int]:
    """Indices of up to ``target`` candidates chosen one at a time, each adding the most diphones not yet
    covered (ties: fewer phones, i.e. shorter to read; then input order). Lazy greedy: a candidate's gain only
    shrinks as coverage grows, so a stale gain is an upper bound and is re-evaluated only when it is on top."""
    import heapq

    sets = [diphones_of(c) for c in candidates]
    lengths = [sum(len(w) for w in c) for c in candidates]
    covered = set(covered)
    heap = [(-len(s - covered), lengths[i], i) for i, s in enumerate(sets)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and len(chosen) < target:
        neg_gain, length, index = heapq.heappop(heap)
        gain = len(sets[index] - covered)
        if gain != -neg_gain:
            heapq.heappush(heap, (-gain, length, index))
            continue
        if gain == 0:
            break
        chosen.append(index)
        covered |= sets[index]
    return chosen


@dataclass
class PromptImportReport:
    lines: int = 0
    created: int = 0
    existing: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def _read_prompt_lines(path: Path) -> list[tuple[int, str, str]]:
    """(line number, text, prompt type) per non-empty line; TSV rows are ``text<TAB>type``, a header row allowed."""
    if not path.is_file():
        raise ServiceError("file_missing", f"{path} does not exist.")
    rows: list[tuple[int, str, str]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or not fields[0].strip() or fields[0].lstrip().startswith("#"):
                continue
            if number == 1 and fields[0].strip().lower() == "text":
                continue
            prompt_type = fields[1].strip().lower() if len(fields) > 1 and fields[1].strip() else ""
            rows.append((number, fields[0], prompt_type))
    return rows


def prompts_import(
    *,
    path: Path,
    prompt_type: str = PromptType.DIVERSE,
    source: str = "",
    on_line: Callable[[int, str | None], None] | None = None,
) -> PromptImportReport:
    """Create a prompt per line through ``prompt_create`` (normalisation, CMUdict and the operator lexicon,
    refusal naming the unknown words); bad lines are reported with their reason and skipped."""
    report = PromptImportReport()
    lexicon = lexicon_as_mapping()
    for number, text, line_type in _read_prompt_lines(path):
        report.lines += 1
        try:
            _, created = prompt_create(
                text=text, prompt_type=line_type or prompt_type, source=source or path.stem, lexicon=lexicon
            )
        except ServiceError as exc:
            report.failures.append((number, exc.message))
            if on_line:
                on_line(number, exc.message)
            continue
        report.created += int(created)
        report.existing += int(not created)
        if on_line:
            on_line(number, None)
    return report


@dataclass(frozen=True)
class PromptSelection:
    before: Coverage
    after: Coverage
    chosen: list[Prompt]


def prompts_select_coverage(*, target: int, apply: bool = False, source: str | None = None) -> PromptSelection:
    """Choose up to ``target`` active non-shared prompts that add the most diphones to the shared and already
    chosen coverage prompts; ``apply`` marks them as coverage prompts."""
    if target < 1:
        raise ServiceError("target_invalid", "--target must be at least 1.")
    active = Prompt.objects.filter(is_active=True)
    base = list(
        active.filter(prompt_type__in=[PromptType.SHARED, PromptType.COVERAGE]).values_list("phones", flat=True)
    )
    pool_qs = active.filter(prompt_type=PromptType.DIVERSE)
    if source:
        pool_qs = pool_qs.filter(source=source)
    pool = list(pool_qs.order_by("id"))
    if not pool:
        raise ServiceError("prompts_none", "There are no active diverse prompts to choose from.")
    covered: set[Diphone] = set()
    for phones in base:
        covered |= diphones_of(phones)
    chosen_idx = greedy_cover([p.phones for p in pool], target=target, covered=covered)
    chosen = [pool[i] for i in chosen_idx]
    if apply and chosen:
        with transaction.atomic():
            Prompt.objects.filter(pk__in=[p.pk for p in chosen]).update(prompt_type=PromptType.COVERAGE)
    return PromptSelection(
        before=coverage_of(base), after=coverage_of([*base, *(p.phones for p in chosen)]), chosen=chosen
    )
