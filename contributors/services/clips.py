"""Clip submission, analysis and storage hygiene.

A clip's file is content-addressed (``clips/ab/<sha256>.flac``) and written before its row; the row is
committed in one transaction; if the row cannot be committed the file is removed unless another row uses
it. A crash between the two leaves an unreferenced file, which ``storage_sweep_orphans`` removes after a
grace period, so the storage never keeps a file without a row, and no row points at a missing file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from contributors.audio import (
    AudioRejected,
    ClipLimits,
    NormalisedAudio,
    estimate_speech,
    normalise,
    read_flac,
)
from contributors.conf import clip_limits
from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipStatus,
    Contributor,
    CorpusSource,
    Prompt,
    Provenance,
    ValidationAssignment,
)
from contributors.services.trust import trust_after_submission, trust_write, trust_write_recomputed
from core.errors import ServiceError
from core.inputs import parse_id

logger = logging.getLogger(__name__)

CLIP_PREFIX = "clips"
# Analyses of one clip before it is given up: enough for a storage blip or a worker restart to pass, few enough
# that a file that crashes the analysis costs three tries, not one every sweep forever.
ANALYSIS_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ClipSubmission:
    clip: Clip
    created: bool  # False when the very same recording was already stored (an idempotent retry)


def clip_storage_name(sha256: str) -> str:
    return f"{CLIP_PREFIX}/{sha256[:2]}/{sha256}.flac"


def _prompt_for_submission(prompt_id: object) -> Prompt:
    pk = parse_id(prompt_id)
    if pk is None:
        raise ServiceError("prompt_unknown", f"A prompt id is a positive number in ASCII digits, not {prompt_id!r}.")
    prompt = Prompt.objects.filter(pk=pk, is_active=True).first()
    if prompt is None:
        raise ServiceError("prompt_unknown", f"There is no active prompt with id {prompt_id!r}.")
    if prompt.held_for_review:  # readers reported it: no more readings until an operator decides
        raise ServiceError(
            "prompt_held",
            "Several readers reported this sentence, and it is held until an operator looks at it; "
            "record the next one instead.",
            status_code=409,
        )
    return prompt


def _resolve_existing(
    *, contributor: Contributor, prompt: Prompt, audio: NormalisedAudio
) -> tuple[Clip | None, Clip | None]:
    """(the same recording already stored for this reading, the clip it would replace)."""
    same = Clip.objects.filter(sha256=audio.sha256).select_related("contributor", "prompt").first()
    if same is not None:
        if same.contributor_id == contributor.pk and same.prompt_id == prompt.pk:
            return same, None
        raise ServiceError(
            "audio_duplicate",
            "This exact recording was already submitted for another prompt or by another contributor.",
            status_code=409,
        )
    previous = Clip.objects.filter(contributor=contributor, prompt=prompt).first()
    if previous is not None:
        _check_replaceable(previous)
    return None, previous


def _check_replaceable(previous: Clip) -> None:
    if previous.status != ClipStatus.PENDING:
        raise ServiceError(
            "clip_final",
            f"Your recording of this prompt is already {previous.status}; it cannot be replaced.",
            status_code=409,
            clip_id=previous.pk,
        )
    if previous.votes.exists():
        raise ServiceError(
            "clip_under_review",
            "Your recording of this prompt is being reviewed; it can no longer be replaced.",
            status_code=409,
            clip_id=previous.pk,
        )


def _store_file(audio: NormalisedAudio) -> tuple[str, bool]:
    """Write the FLAC under its content name; returns (name, whether this call created it)."""
    name = clip_storage_name(audio.sha256)
    if default_storage.exists(name):
        return name, False
    saved = default_storage.save(name, ContentFile(audio.flac))
    if saved != name:  # a concurrent upload of the same content wrote it first; keep that copy
        default_storage.delete(saved)
        return name, False
    return name, True


def _delete_file_if_unreferenced(name: str) -> None:
    if not Clip.objects.filter(audio=name).exists():
        default_storage.delete(name)


def clip_submit(
    *,
    contributor: Contributor,
    prompt_id: object,
    data: bytes,
    provenance: str = Provenance.RECORDED,
    source: CorpusSource | None = None,
    status: str = ClipStatus.PENDING,
    limits: ClipLimits | None = None,
    analyse_inline: bool = False,
    recorded_by: str = "",
) -> ClipSubmission:
    """Check, normalise and store one reading of a prompt.

    Re-recording replaces the contributor's pending, not yet voted-on clip for the same prompt; the same
    recording sent twice returns the stored clip (``created=False``). Raises ServiceError on refusal.
    ``limits`` overrides the upload limits (an import of a curated corpus); ``analyse_inline`` measures
    speech at once instead of in the worker (batch jobs, which are off the request path anyway). An imported
    clip names its ``source`` (its corpus and licence); a recorded one has none. ``recorded_by``, when given, is
    the speaker id the recording page was opened as: a take kept by a page whose account was logged out, and
    another logged in (in another tab), is refused with 409 ``speaker_changed``, not filed under another voice.
    """
    if recorded_by and recorded_by != contributor.speaker_id:
        raise ServiceError(
            "speaker_changed",
            "This take was recorded while another account was logged in; log in as that account to submit it "
            "(it is kept in this browser), or record the sentence again.",
            status_code=409,
        )
    if (provenance == Provenance.IMPORTED) != (source is not None):
        raise ServiceError(
            "source_mismatch", "An imported clip needs the corpus it came from, and only an imported clip has one."
        )
    if not contributor.has_consented:
        raise ServiceError(
            "consent_required",
            "Recordings are published under CC0; give your consent in your profile before recording.",
            status_code=403,
        )
    prompt = _prompt_for_submission(prompt_id)
    try:
        audio = normalise(data, limits or clip_limits())
    except AudioRejected as exc:
        raise ServiceError(exc.code, exc.message) from exc

    same, _ = _resolve_existing(contributor=contributor, prompt=prompt, audio=audio)
    if same is not None:
        return ClipSubmission(clip=same, created=False)

    name, created_file = _store_file(audio)
    try:
        submission = _save_row(
            contributor=contributor,
            prompt=prompt,
            audio=audio,
            name=name,
            provenance=provenance,
            source=source,
            status=status,
            analyse_inline=analyse_inline,
        )
    except IntegrityError:
        # A concurrent request for the same reading won the race; answer as if we had come second.
        if created_file:
            _delete_file_if_unreferenced(name)
        same, _ = _resolve_existing(contributor=contributor, prompt=prompt, audio=audio)
        if same is not None:
            return ClipSubmission(clip=same, created=False)
        raise ServiceError(
            "clip_conflict", "Another upload for this prompt arrived at the same time; try again.", status_code=409
        ) from None
    except BaseException:
        if created_file:
            _delete_file_if_unreferenced(name)
        raise
    return submission


def _save_row(
    *,
    contributor: Contributor,
    prompt: Prompt,
    audio: NormalisedAudio,
    name: str,
    provenance: str,
    source: CorpusSource | None,
    status: str,
    analyse_inline: bool,
) -> ClipSubmission:
    fields = {
        "audio": name,
        "sha256": audio.sha256,
        "duration_s": audio.duration_s,
        "original_format": audio.original_format,
        "original_sample_rate": audio.original_sample_rate,
        "original_channels": audio.original_channels,
        "original_bytes": audio.original_bytes,
        "rms_dbfs": audio.rms_dbfs,
        "peak_dbfs": audio.peak_dbfs,
        "clipping_ratio": audio.clipping_ratio,
        "speech_ratio": None,
        "snr_db": None,
        "analysed_at": None,
        "analysis_attempts": 0,
        "analysis_error": "",
        **(_speech_fields(audio) if analyse_inline else {}),
        "provenance": provenance,
        "source": source,
        "status": status,
        "score": 0.0,
        # A status given at import (a curated corpus) is fixed; votes still count but do not change it.
        "status_fixed": status != ClipStatus.PENDING,
    }

    def store(exclusive: bool) -> ClipSubmission:
        # Under the trust lock (shared), so that no full recompute reads the clips while this one appears.
        previous = Clip.objects.select_for_update().filter(contributor=contributor, prompt=prompt).first()
        replaced_name = None
        if previous is not None and previous.sha256 == audio.sha256:
            return ClipSubmission(clip=previous, created=False)  # the same upload, committed meanwhile
        if previous is None:
            clip = Clip.objects.create(contributor=contributor, prompt=prompt, **fields)
            if not clip.status_fixed:
                trust_after_submission(contributor=contributor, exclusive=exclusive)
        else:
            _check_replaceable(previous)  # again, under the row lock: a vote may have arrived meanwhile
            replaced_name = previous.audio.name
            for field, value in fields.items():
                setattr(previous, field, value)
            previous.save()
            clip = previous
        if not analyse_inline:
            transaction.on_commit(lambda: _enqueue_analysis(clip.pk))
        if replaced_name and replaced_name != name:
            transaction.on_commit(lambda: _delete_file_if_unreferenced(replaced_name))
        return ClipSubmission(clip=clip, created=True)

    return trust_write(store)


def _speech_fields(audio: NormalisedAudio) -> dict[str, object]:
    estimate = estimate_speech(audio.samples)
    return {"speech_ratio": estimate.speech_ratio, "snr_db": estimate.snr_db, "analysed_at": timezone.now()}


def _enqueue_analysis(clip_id: int) -> None:
    from contributors.tasks import clip_analyse

    try:
        clip_analyse.delay(clip_id)
    except Exception:  # the broker being down must not fail an upload that is already committed
        logger.exception("could not enqueue analysis of clip %s; the periodic sweep will retry", clip_id)


def clip_withdraw(*, contributor: Contributor, clip_id: int) -> Clip:
    """The author takes a recording back: its audio is deleted, its status is fixed to discarded (so it leaves
    the validation queue, counts in nobody's trust, and no future release includes it; the full recompute
    re-derives what its votes and its place in its author's trust decided), and an open assignment on it is
    withdrawn. Releases already published keep it: they are immutable and CC0.

    Refused: another's clip or an unknown one (404, as the clip is not theirs to see), a clip already withdrawn
    (409)."""
    clip = Clip.objects.filter(pk=clip_id, contributor=contributor).first()
    if clip is None:
        raise ServiceError("clip_unknown", f"You have no clip {clip_id}.", status_code=404)

    def withdraw() -> Clip:
        locked = Clip.objects.select_for_update().get(pk=clip.pk)
        if locked.withdrawn_at is not None:
            raise ServiceError("clip_withdrawn", "You have already withdrawn this clip.", status_code=409)
        now = timezone.now()
        name = locked.audio.name
        locked.withdrawn_at, locked.status, locked.status_fixed, locked.audio = now, ClipStatus.DISCARDED, True, ""
        locked.save(update_fields=["withdrawn_at", "status", "status_fixed", "audio", "updated_at"])
        ValidationAssignment.objects.filter(clip=locked, outcome=AssignmentOutcome.OPEN).update(
            outcome=AssignmentOutcome.WITHDRAWN, closed_at=now
        )
        transaction.on_commit(lambda: _delete_file_if_unreferenced(name))
        return locked

    withdrawn = trust_write_recomputed(withdraw, trigger="withdrawal")
    withdrawn.refresh_from_db()
    return withdrawn


def clip_analyse(*, clip_id: int) -> Clip | None:
    """Measure speech ratio and SNR once; a no-op when the clip is gone, withdrawn, already analysed or given up.

    Each start counts as an attempt before any work, so that a worker killed by the file counts too; a failure is
    recorded on the clip (``analysis_error``) and not raised: the periodic sweep tries again until
    ``ANALYSIS_MAX_ATTEMPTS`` and then leaves the clip alone, its error on record for an operator."""
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None or clip.analysed_at is not None or clip.withdrawn_at is not None:
        return clip
    if clip.analysis_attempts >= ANALYSIS_MAX_ATTEMPTS:
        return clip
    mine = Clip.objects.filter(pk=clip_id, sha256=clip.sha256, analysed_at__isnull=True)
    mine.update(analysis_attempts=F("analysis_attempts") + 1)
    try:
        with default_storage.open(clip.audio.name, "rb") as handle:
            samples = read_flac(handle.read())
        estimate = estimate_speech(samples)
    except Exception as exc:  # any failure of this clip's analysis is the clip's, recorded on it
        logger.exception("analysis of clip %s failed", clip_id)
        mine.update(analysis_error=f"{type(exc).__name__}: {exc}"[:500])
        clip.refresh_from_db()
        return clip
    # Guarded update: a replacement committed meanwhile (new sha) must be analysed on its own.
    mine.update(
        speech_ratio=estimate.speech_ratio, snr_db=estimate.snr_db, analysed_at=timezone.now(), analysis_error=""
    )
    clip.refresh_from_db()
    return clip


def clips_analyse_missing(*, limit: int = 500) -> int:
    """Enqueue analysis for clips that have none (a lost message, a broker that was down, a failure that may pass),
    except those given up after ``ANALYSIS_MAX_ATTEMPTS``."""
    stale = timezone.now() - timedelta(minutes=10)
    missing = Clip.objects.filter(
        analysed_at__isnull=True,
        withdrawn_at__isnull=True,
        updated_at__lt=stale,
        analysis_attempts__lt=ANALYSIS_MAX_ATTEMPTS,
    ).order_by("analysis_attempts", "pk")
    ids = list(missing.values_list("pk", flat=True)[:limit])
    for clip_id in ids:
        _enqueue_analysis(clip_id)
    return len(ids)


def storage_sweep_orphans(*, grace: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete clip files no row refers to and older than ``grace``; returns what was deleted."""
    deleted: list[str] = []
    cutoff = timezone.now() - grace
    try:
        shards, _ = default_storage.listdir(CLIP_PREFIX)
    except FileNotFoundError:
        return deleted
    for shard in shards:
        _, files = default_storage.listdir(f"{CLIP_PREFIX}/{shard}")
        names = [f"{CLIP_PREFIX}/{shard}/{f}" for f in files]
        referenced = set(Clip.objects.filter(audio__in=names).values_list("audio", flat=True))
        for name in names:
            if name in referenced or default_storage.get_modified_time(name) > cutoff:
                continue
            default_storage.delete(name)
            deleted.append(name)
    return deleted
