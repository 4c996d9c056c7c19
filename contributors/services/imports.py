"""Bulk import of an existing corpus through the same services as an upload."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from contributors.conf import clip_limits
from contributors.models import (
    PLATFORM_SOURCE,
    ClipStatus,
    Contributor,
    CorpusSource,
    Gender,
    PromptType,
    Provenance,
)
from contributors.services.clips import clip_submit
from contributors.services.prompts import lexicon_add, lexicon_as_mapping, prompt_create
from core.errors import ServiceError
from core.licences import UnknownLicence, licence_get
from speech.corpus import ManifestError, age_band, read_manifest
from speech.pronunciation import cmudict_pronunciation

_GENDERS = {"m": Gender.MALE, "male": Gender.MALE, "f": Gender.FEMALE, "female": Gender.FEMALE}


# Descriptions of the corpora this project imports (name, licence, URL, citation), for --source-file.
SOURCES_DIR = Path(__file__).resolve().parents[1] / "corpus_sources"
SPEECHOCEAN762_SOURCE = SOURCES_DIR / "speechocean762.json"
# A source's name prefixes its speakers' user names and is listed in every release: short and plain.
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SOURCE_FIELDS = ("name", "licence", "url", "citation")


def read_source_file(path: Path) -> dict[str, str]:
    """A corpus's provenance as JSON: ``{"name", "licence" (SPDX id), "url", "citation"}``."""
    if not path.is_file():
        raise ServiceError("source_file_missing", f"{path} does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceError("source_file_invalid", f"{path} is not a JSON object: {exc}.") from exc
    if not isinstance(data, dict):
        raise ServiceError("source_file_invalid", f"{path} is not a JSON object of {', '.join(SOURCE_FIELDS)}.")
    unknown = sorted(set(data) - set(SOURCE_FIELDS))
    if unknown:
        raise ServiceError("source_file_invalid", f"{path} has unknown keys: {', '.join(unknown)}.")
    return {k: str(data.get(k) or "") for k in SOURCE_FIELDS}


def corpus_source_register(*, name: str, licence: str, citation: str, url: str = "") -> tuple[CorpusSource, bool]:
    """The corpus under ``name`` with these details, created or brought up to date (an operator restating a
    source's licence or citation is how a source recorded before provenance existed gets its terms); returns
    (source, changed). Refuses an unknown or non-open licence, an empty citation and a malformed name or URL."""
    name = (name or "").strip()
    if not SOURCE_NAME.match(name):
        raise ServiceError(
            "source_name_invalid",
            f"The source name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit.",
        )
    if name.lower() == PLATFORM_SOURCE:
        raise ServiceError("source_name_reserved", f"{PLATFORM_SOURCE!r} names clips recorded on the platform.")
    try:
        spdx = licence_get(licence).spdx
    except UnknownLicence as exc:
        raise ServiceError("licence_unknown", str(exc)) from exc
    citation = (citation or "").strip()
    if not citation:
        raise ServiceError("citation_missing", f"Say how {name} is to be cited (its BibTeX entry or a reference).")
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise ServiceError("source_url_invalid", f"{url!r} is not an http(s) URL.") from exc
    details = {"licence": spdx, "url": url, "citation": citation}
    with transaction.atomic():
        source, created = CorpusSource.objects.select_for_update().get_or_create(name=name, defaults=details)
        changed = created or any(getattr(source, k) != v for k, v in details.items())
        if changed and not created:
            for key, value in details.items():
                setattr(source, key, value)
            source.save()
    return source, changed


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    contributors_created: int = 0
    prompts_created: int = 0
    lexicon_entries: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (utt_id, reason)


def read_lexicon(path: Path) -> dict[str, str]:
    """'WORD PH1 PH2 ...' per line; the first pronunciation of a word wins (CMUdict's convention)."""
    if not path.is_file():
        raise ManifestError(f"{path} does not exist.")
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            entries.setdefault(parts[0].lower(), " ".join(parts[1:]))
    return entries


def lexicon_import_missing(*, path: Path, source: str) -> int:
    """Add the corpus lexicon's words that CMUdict lacks; CMUdict stays canonical for the rest."""
    entries = {w: p for w, p in read_lexicon(path).items() if cmudict_pronunciation(w) is None}
    return lexicon_add(entries=entries, source=source) if entries else 0


def _contributor_for_speaker(
    *, source: CorpusSource, row: dict[str, str], accent: str, first_language: str, report: ImportReport
) -> Contributor:
    User = get_user_model()
    username = f"{source.name}-{row['speaker']}"[:150]
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            report.contributors_created += 1
        contributor, _ = Contributor.objects.get_or_create(
            user=user,
            defaults={
                "gender": _GENDERS.get(row["gender"].strip().lower(), ""),
                "age_band": age_band(row["age"]),
                "accent": accent,
                "first_language": first_language,
                # The corpus's own licence covers publication; the import records when it was accepted.
                "cc0_consent_at": timezone.now(),
            },
        )
    return contributor


def corpus_import(
    *,
    manifest: Path,
    audio_root: Path,
    source: CorpusSource,
    lexicon: Path | None = None,
    validated: bool = False,
    accent: str = "",
    first_language: str = "",
    max_duration_s: float = 30.0,
    limit: int | None = None,
    on_row: Callable[[str, str | None], None] | None = None,
) -> ImportReport:
    """Import every row; a bad row is recorded in the report with its reason and skipped.

    Each speaker becomes a contributor (username ``<source name>-<speaker>``), each sentence a prompt, each
    file a clip through ``clip_submit`` with provenance "imported" and ``source`` (from
    ``corpus_source_register``); ``validated`` marks clips valid. Running it again imports nothing twice."""
    report = ImportReport()
    if lexicon is not None:
        report.lexicon_entries = lexicon_import_missing(path=lexicon, source=source.name)
    lexicon_map = lexicon_as_mapping()
    limits = replace(clip_limits(), max_duration_s=max_duration_s)
    status = ClipStatus.VALID if validated else ClipStatus.PENDING
    speakers: dict[str, Contributor] = {}
    audio_root = audio_root.resolve()
    for row in read_manifest(manifest):
        if limit is not None and report.rows >= limit:
            break
        report.rows += 1
        utt_id = row.get("utt_id") or f"row {report.rows}"
        try:
            contributor = speakers.get(row["speaker"])
            if contributor is None:
                contributor = _contributor_for_speaker(
                    source=source, row=row, accent=accent, first_language=first_language, report=report
                )
                speakers[row["speaker"]] = contributor
            prompt, created = prompt_create(
                text=row["text"], prompt_type=PromptType.DIVERSE, source=source.name, lexicon=lexicon_map
            )
            report.prompts_created += int(created)
            audio_path = (audio_root / row["audio"]).resolve()
            if not audio_path.is_relative_to(audio_root):
                raise ServiceError("audio_path_outside_root", f"{row['audio']} points outside --audio-root.")
            if not audio_path.is_file():
                raise ServiceError("audio_missing", f"{audio_path} does not exist.")
            submission = clip_submit(
                contributor=contributor,
                prompt_id=prompt.pk,
                data=audio_path.read_bytes(),
                provenance=Provenance.IMPORTED,
                source=source,
                status=status,
                limits=limits,
                analyse_inline=True,
            )
        except ServiceError as exc:
            report.failures.append((utt_id, f"{exc.code}: {exc.message}"))
            if on_row:
                on_row(utt_id, exc.message)
            continue
        if submission.created:
            report.imported += 1
        else:
            report.already_present += 1
        if on_row:
            on_row(utt_id, None)
    return report
