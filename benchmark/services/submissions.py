"""Leaderboard submissions: accept an ONNX file under a daily quota, evaluate it in the sandbox, record the result.

``submission_create`` checks the file statically, takes a place in the submitter's daily quota under a lock on
their user row (so parallel uploads cannot overrun it), stores the file and the row together and enqueues the
evaluation after commit. ``submission_evaluate`` is the worker's side: it claims the row, runs the model on the
hidden test split (and the public one) in the sandbox, decodes greedily, scores PER with S/D/I outside the
sandbox, and records a :class:`SubmissionResult`; a refusal is recorded on the row, never raised to the worker.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np
import soundfile as sf
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from benchmark import exports
from benchmark.evaluation.checks import SubmissionLimits, SubmissionRejected, check_submission
from benchmark.evaluation.decoding import decode_greedy, decode_hmm_bigram, hmm_bigram_decoder
from benchmark.evaluation.metrics import graph_metrics
from benchmark.evaluation.sandbox import SandboxLimits, run_sandboxed
from benchmark.exports import ReleaseEntry
from benchmark.models import (
    Release,
    ReleaseStatus,
    Submission,
    SubmissionDecoder,
    SubmissionResult,
    SubmissionStatus,
    submission_upload_to,
)
from benchmark.services.releases import release_hidden_entries
from core.errors import HTTP_413, ServiceError
from core.phones import INVENTORY
from training.ml.score import ErrorCounts, corpus_counts

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
CLAIM_STALE_AFTER = timedelta(hours=2)  # a claim older than this is taken to be a dead worker's
CLASSES = {
    SubmissionDecoder.GREEDY: len(INVENTORY),
    SubmissionDecoder.GREEDY_CTC: len(INVENTORY) + 1,
    SubmissionDecoder.HMM_BIGRAM: len(INVENTORY),
}
Decode = Callable[[list[np.ndarray]], list[list[str]]]
QUOTA_STATUSES = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING, SubmissionStatus.SUCCEEDED)


# --- creating -----------------------------------------------------------------------------------------------------
def _spool(file: IO[bytes] | bytes, *, folder: Path, max_bytes: int) -> tuple[Path, str, int]:
    """Copy the upload to a local file, hashing as it goes; 413 as soon as it passes the cap."""
    if isinstance(file, bytes | bytearray):
        file = io.BytesIO(file)
    path = folder / "model.onnx"
    digest, size = hashlib.sha256(), 0
    chunks: Iterable[bytes] = file.chunks(CHUNK) if hasattr(file, "chunks") else iter(lambda: file.read(CHUNK), b"")
    with path.open("wb") as sink:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise ServiceError(
                    "model_too_large",
                    f"The model is over the {max_bytes}-byte limit for submissions.",
                    status_code=HTTP_413,
                )
            digest.update(chunk)
            sink.write(chunk)
    return path, digest.hexdigest(), size


def _day_start() -> datetime:
    now = timezone.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def submission_quota_left(*, user) -> int:
    used = Submission.objects.filter(
        submitter=user, created_at__gte=_day_start(), status__in=QUOTA_STATUSES, is_baseline=False
    ).count()
    return max(0, settings.SUBMISSION_DAILY_QUOTA - used)


def submission_create(
    *,
    user,
    file: IO[bytes] | bytes,
    name: str,
    description: str = "",
    url: str = "",
    decoder: str = SubmissionDecoder.GREEDY,
    is_baseline: bool = False,
) -> Submission:
    """A queued submission, its file stored under ``submissions/<uuid>.onnx``; evaluation is enqueued after
    commit. Refusals: 413 ``model_too_large``, 400 with the static check's code, 429 ``quota_exhausted``."""
    if decoder not in SubmissionDecoder.values:
        raise ServiceError("decoder_unknown", f"Decoder must be one of {', '.join(SubmissionDecoder.values)}.")
    max_bytes = settings.SUBMISSION_MAX_BYTES
    with tempfile.TemporaryDirectory(prefix="submission-") as folder:
        path, sha256, size = _spool(file, folder=Path(folder), max_bytes=max_bytes)
        try:
            checked = check_submission(path, SubmissionLimits(max_bytes=max_bytes))
        except SubmissionRejected as exc:
            status_code = HTTP_413 if exc.code == "model_too_large" else 400
            raise ServiceError(exc.code, exc.message, status_code=status_code) from exc
        expected = CLASSES[SubmissionDecoder(decoder)]
        if checked.output_classes is not None and checked.output_classes != expected:
            raise ServiceError(
                "model_output_classes",
                f"The model declares {checked.output_classes} output classes; the {decoder} decoder reads {expected}"
                f" ({', '.join(INVENTORY)}{', blank' if expected > len(INVENTORY) else ''}).",
            )
        submission = Submission(
            submitter=user,
            name=name,
            description=description,
            url=url,
            sha256=sha256,
            size=size,
            decoder=decoder,
            is_baseline=is_baseline,
        )
        submission.file.name = submission_upload_to(submission, "model.onnx")
        submission.full_clean()
        stored = None
        try:
            with transaction.atomic():
                # Locking the submitter's row makes the quota count and the insert one step for this user.
                get_user_model().objects.select_for_update().get(pk=user.pk)
                if not is_baseline and submission_quota_left(user=user) <= 0:
                    raise ServiceError(
                        "quota_exhausted",
                        f"You have made {settings.SUBMISSION_DAILY_QUOTA} submissions today; try again tomorrow.",
                        status_code=429,
                        quota_left=0,
                    )
                with path.open("rb") as handle:
                    stored = default_storage.save(submission.file.name, File(handle))
                submission.file.name = stored
                submission.save()
                transaction.on_commit(lambda: _enqueue(submission.pk))
        except BaseException:
            if stored is not None:
                default_storage.delete(stored)
            raise
    return submission


def _enqueue(submission_id: int, release_id: int | None = None) -> None:
    from benchmark.tasks import submission_evaluate as task

    task.delay(submission_id, release_id)


def submission_cancel(*, user, submission_id: int) -> Submission:
    """A queued submission of ``user`` is cancelled and gives its quota place back; anything else is a 409."""
    with transaction.atomic():
        submission = submission_get_owned(user=user, submission_id=submission_id, lock=True)
        if submission.status != SubmissionStatus.QUEUED:
            raise ServiceError(
                "submission_not_cancellable",
                f"The submission is {submission.status}; only a queued one can be cancelled.",
                status_code=409,
            )
        submission.status = SubmissionStatus.CANCELLED
        submission.finished_at = timezone.now()
        submission.save(update_fields=["status", "finished_at"])
    return submission


def submission_get_owned(*, user, submission_id: int, lock: bool = False) -> Submission:
    queryset = Submission.objects.select_for_update() if lock else Submission.objects.all()
    submission = queryset.filter(pk=submission_id).first()
    if submission is None or (submission.submitter_id != user.pk and not user.is_staff):
        raise ServiceError("submission_unknown", f"You have no submission {submission_id}.", status_code=404)
    return submission


# --- evaluating ---------------------------------------------------------------------------------------------------
@dataclass
class Scored:
    counts: ErrorCounts
    utterances: int
    frames: int


def _score(entries: list[ReleaseEntry], log_probs: dict[str, np.ndarray], *, decode: Decode) -> Scored:
    references = [[p for word in e.phones for p in word] for e in entries]
    hypotheses = decode([log_probs[e.utt_id] for e in entries])
    frames = sum(int(log_probs[e.utt_id].shape[0]) for e in entries)
    return Scored(corpus_counts(references, hypotheses), len(entries), frames)


def _decoder_for(decoder: str, train: list[ReleaseEntry]) -> Decode:
    """The submission's declared decoder as a function of a batch of utterances' log-probabilities."""
    if decoder == SubmissionDecoder.HMM_BIGRAM:
        hmm = hmm_bigram_decoder([e.phones for e in train])
        return lambda batch: decode_hmm_bigram(hmm, batch)
    ctc = decoder == SubmissionDecoder.GREEDY_CTC
    return lambda batch: [decode_greedy(lp, ctc=ctc) for lp in batch]


def _waveform(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle:
        samples, rate = sf.read(io.BytesIO(handle.read()), dtype="float32", always_2d=False)
    if rate != exports.SAMPLE_RATE:
        raise ValueError(f"{name} is {rate} Hz, not {exports.SAMPLE_RATE}")
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def release_public_entries(*, release: Release) -> list[ReleaseEntry]:
    with default_storage.open(release.manifest_path, "rb") as handle:
        return [exports.entry_from_json(json.loads(line)) for line in handle if line.strip()]


def _claim(submission_id: int, release_id: int | None) -> Submission | None:
    """The submission, marked running for a first evaluation; None when there is nothing left to do."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return None
        if release_id is not None:  # a re-evaluation on another release
            if submission.status != SubmissionStatus.SUCCEEDED:
                return None
            if SubmissionResult.objects.filter(submission=submission, release_id=release_id).exists():
                return None
            return submission
        stale = submission.started_at is not None and timezone.now() - submission.started_at > CLAIM_STALE_AFTER
        if submission.status == SubmissionStatus.RUNNING and not stale:
            return None
        if submission.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
            return None  # finished or cancelled: a redelivery does nothing
        submission.status = SubmissionStatus.RUNNING
        submission.started_at = timezone.now()
        submission.save(update_fields=["status", "started_at"])
        return submission


def _sandbox_limits() -> SandboxLimits:
    return SandboxLimits(**settings.SUBMISSION_SANDBOX)


def _latest_ready_release() -> Release | None:
    return Release.objects.filter(status=ReleaseStatus.READY).order_by("-created_at", "-id").first()


def _run(submission: Submission, release: Release) -> SubmissionResult:
    """Everything but bookkeeping; raises SubmissionRejected with a code."""
    started = time.perf_counter()
    hidden = release_hidden_entries(release=release)
    if not hidden:
        raise SubmissionRejected("release_no_hidden_split", f"Release {release.version} has no hidden test split.")
    published = release_public_entries(release=release)
    public = [e for e in published if e.split == "test"]
    waveforms = {e.utt_id: _waveform(f"{release.private_prefix}/{e.audio}") for e in hidden}
    waveforms |= {e.utt_id: _waveform(f"{release.storage_prefix}/{e.audio}") for e in public}
    with tempfile.TemporaryDirectory(prefix="submission-eval-") as folder:
        model_path = Path(folder) / "model.onnx"
        with submission.file.open("rb") as source, model_path.open("wb") as sink:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                sink.write(chunk)
        if hashlib.sha256(model_path.read_bytes()).hexdigest() != submission.sha256:
            raise SubmissionRejected("submission_file_changed", "The stored model does not match its checksum.")
        result = run_sandboxed(model_path, waveforms, classes=CLASSES[submission.decoder], limits=_sandbox_limits())
        metrics = graph_metrics(model_path)
    decode = _decoder_for(submission.decoder, [e for e in published if e.split == "train"])
    hidden_scored = _score(hidden, result.log_probs, decode=decode)
    public_scored = _score(public, result.log_probs, decode=decode) if public else None
    rtf = result.rtf_runs or [0.0]
    return SubmissionResult(
        submission=submission,
        release=release,
        per_hidden=hidden_scored.counts.per,
        reference_phones=hidden_scored.counts.reference,
        substitutions=hidden_scored.counts.substitutions,
        deletions=hidden_scored.counts.deletions,
        insertions=hidden_scored.counts.insertions,
        utterances=hidden_scored.utterances,
        frames=hidden_scored.frames,
        per_public=public_scored.counts.per if public_scored else None,
        public_reference_phones=public_scored.counts.reference if public_scored else 0,
        parameters=metrics.parameters,
        depth=metrics.depth,
        macs_per_second=metrics.macs_per_second,
        rtf_median=statistics.median(rtf),
        rtf_min=min(rtf),
        rtf_max=max(rtf),
        isolation=result.isolation,
        seconds=time.perf_counter() - started,
    )


def submission_evaluate(*, submission_id: int, release_id: int | None = None) -> Submission | None:
    """Evaluate a submission on ``release_id`` (default: the latest ready release, for its first evaluation).
    Idempotent: a finished or cancelled submission, or one already scored on that release, is left alone."""
    submission = _claim(submission_id, release_id)
    if submission is None:
        return None
    release = Release.objects.filter(pk=release_id).first() if release_id is not None else _latest_ready_release()
    try:
        if release is None or release.status != ReleaseStatus.READY:
            raise SubmissionRejected("release_unavailable", "There is no ready release to evaluate on.")
        result = _run(submission, release)
    except SubmissionRejected as exc:
        _record_failure(submission, release if release_id is not None else None, exc.code, exc.message)
    except Exception as exc:  # the worker survives anything a model or its data can do; operators see the log
        logger.exception("evaluation of submission %s failed", submission_id)
        _record_failure(submission, release if release_id is not None else None, "eval_internal_error", str(exc))
    else:
        _record_success(submission, result)
    submission.refresh_from_db()
    return submission


def _record_success(submission: Submission, result: SubmissionResult) -> None:
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        try:
            with transaction.atomic():
                result.save()
        except IntegrityError:
            return  # a parallel delivery recorded this release first
        if locked.status == SubmissionStatus.RUNNING:
            locked.status = SubmissionStatus.SUCCEEDED
            locked.release = result.release
            locked.failure_code = locked.failure_message = ""
            locked.finished_at = timezone.now()
            locked.save(update_fields=["status", "release", "failure_code", "failure_message", "finished_at"])


def _record_failure(submission: Submission, release: Release | None, code: str, message: str) -> None:
    with transaction.atomic():
        if release is not None:  # a re-evaluation: the submission keeps its status, the release gets the failure
            SubmissionResult.objects.get_or_create(
                submission=submission,
                release=release,
                defaults={"succeeded": False, "failure_code": code, "failure_message": message[:2000]},
            )
            return
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        if locked.status != SubmissionStatus.RUNNING:
            return
        locked.status = SubmissionStatus.FAILED
        locked.failure_code = code
        locked.failure_message = message[:2000]
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "failure_code", "failure_message", "finished_at"])


# --- re-evaluation on a new release -------------------------------------------------------------------------------
def submissions_reevaluate_enqueue(*, release: Release) -> None:
    """Called when a release becomes ready: every succeeded submission is evaluated on it, after commit."""
    from benchmark.tasks import submissions_reevaluate as task

    release_id = release.pk
    transaction.on_commit(lambda: task.delay(release_id))


def submissions_reevaluate(*, release_id: int) -> int:
    """Enqueue an evaluation on ``release_id`` for each succeeded submission not yet scored on it."""
    pending = (
        Submission.objects.filter(status=SubmissionStatus.SUCCEEDED)
        .exclude(results__release_id=release_id)
        .values_list("pk", flat=True)
    )
    count = 0
    for submission_id in pending:
        _enqueue(submission_id, release_id)
        count += 1
    return count
