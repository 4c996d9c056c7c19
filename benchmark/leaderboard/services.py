"""Leaderboard submissions: accept an ONNX file under a daily quota, evaluate it in the sandbox, record the result.

``submission_create`` checks the file statically, takes a place in the submitter's daily quota under a lock on
their user row (so parallel uploads cannot overrun it), stores the file and the row together and enqueues the
evaluation after commit. ``submission_evaluate`` is the worker's side: it claims the row (one running evaluation
per account), runs the model first on public probe inputs (silence, a tone, a public test clip), then on the hidden
test split (and the public one) in the sandbox, where inference, the frame-count check, decoding and the graph
metrics all run under duration-scaled limits; it scores PER with S/D/I in the parent (labels never enter the
sandbox) and records a :class:`SubmissionResult`. A refusal is recorded on the row, never raised to the worker.

What a submitter reads about a failure is a stable code and a fixed sentence per code: nothing derived from hidden
audio (utterance ids, lengths, shapes, runtime text). The full detail goes to ``failure_detail``, for operators.
Failures on the probes are public and come back in detail. Failed evaluations count towards the daily quota unless
the platform was at fault (``PLATFORM_FAULTS``).

A release without a hidden split (too few platform speakers) ranks on its public test split: its submissions are
evaluated and scored there (shared prompts left out as ever), and its board says it is not blind.

A running evaluation beats a heartbeat: a first evaluation on its submission, a re-evaluation (a new release's
re-score, an operator's re-run) on its result row. ``submissions_reap`` re-queues one whose worker went silent up
to ``SUBMISSION_MAX_RECOVERIES`` times, then fails it with ``eval_worker_lost``, which counts towards the quota: a
model that keeps killing its worker does not get evaluated for free.

Each claim is fenced (:mod:`core.fencing`): a first evaluation's token is the submission's ``claims``, a
re-evaluation's its result row's ``attempts``, both raised at the claim and never reset. The heartbeat, the result
and the final status are written only while the row still holds the worker's token, so a worker that was taken
for dead and replaced records nothing and stops. The heartbeat comes from a background thread through the whole
evaluation (reading the release and its audio can take minutes before the sandbox starts), and from the sandbox's
wait as well, which is where a cancelled or superseded evaluation's child is killed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from benchmark.conf import submission_settings
from benchmark.leaderboard.evaluation.checks import SubmissionLimits, SubmissionRejected, check_submission
from benchmark.leaderboard.evaluation.sandbox import (
    Cancelled,
    SandboxLimits,
    evaluation_folder,
    run_sandboxed,
    sweep_temp_folders,
)
from benchmark.models import (
    Release,
    ReleaseStatus,
    Submission,
    SubmissionDecoder,
    SubmissionResult,
    SubmissionStatus,
    submission_upload_to,
)
from benchmark.releases import exports
from benchmark.releases.exports import ReleaseEntry, bigram_transcripts, scored_entries
from benchmark.releases.selectors import release_blind, release_hidden_entries, release_public_entries
from core.errors import HTTP_413, ServiceError
from core.fencing import Fence, Heartbeat, Superseded, reap_silent
from core.inputs import refuse_control_characters
from speech.phones import INVENTORY
from speech.score import ErrorCounts, corpus_counts

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
CLASSES = {
    SubmissionDecoder.GREEDY: len(INVENTORY),
    SubmissionDecoder.GREEDY_CTC: len(INVENTORY) + 1,
    SubmissionDecoder.HMM_BIGRAM: len(INVENTORY),
}
QUOTA_STATUSES = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING, SubmissionStatus.SUCCEEDED)
# What a submitter reads for each evaluation failure: fixed, so that nothing about the hidden split can leak.
FAILURE_SENTENCES = {
    "eval_load_failed": "onnxruntime could not load the model.",
    "eval_runtime_error": "onnxruntime stopped with an error while running the model.",
    "eval_output_shape": "the output's shape does not match the specification ([1, frames, classes]).",
    "eval_output_frames": "the output has more frames than the specification allows (ceil(samples / 160) + 8).",
    "eval_output_not_finite": "the output holds NaN or infinite values.",
    "eval_memory": "the model needs more memory than the evaluation allows.",
    "eval_cpu_time": "the model or its decoding used up its CPU-time limit, which scales with the audio's duration.",
    "eval_timeout": "the evaluation ran past its wall-clock limit, which scales with the audio's duration.",
    "eval_file_size": "the evaluation tried to write more than its file limit.",
    "eval_crashed": "the evaluation process stopped unexpectedly.",
    "eval_internal_error": "the platform failed to evaluate the model; this does not count towards your quota.",
    "eval_worker_lost": "the worker evaluating the model was lost on every try; this counts towards your quota.",
    "release_unavailable": "there is no ready release to evaluate on; this does not count towards your quota.",
    "release_no_hidden_split": "the release has no hidden test split; this does not count towards your quota.",
    "release_no_test_split": "the release has no test split to rank on; this does not count towards your quota.",
    "submission_file_changed": "the stored model does not match its checksum; this does not count towards your quota.",
}
GENERIC_FAILURE = "the evaluation failed."
# Failures that are not the submitter's doing: they give the quota place back.
PLATFORM_FAULTS = frozenset(
    {
        "eval_internal_error",
        "release_unavailable",
        "release_no_hidden_split",
        "release_no_test_split",
        "submission_file_changed",
    }
)
PROBE_SECONDS = 1.0


def failure_sentence(code: str) -> str:
    return f"{code}: {FAILURE_SENTENCES.get(code, GENERIC_FAILURE)}"


# --- creating -----------------------------------------------------------------------------------------------------
def _too_large(max_bytes: int) -> ServiceError:
    return ServiceError(
        "model_too_large", f"The model is over the {max_bytes}-byte limit for submissions.", status_code=HTTP_413
    )


def _on_disk(file: IO[bytes] | bytes, *, folder: Path, max_bytes: int) -> tuple[Path, str, int]:
    """The model as a local file, its sha256 and size; 413 as soon as it passes the cap. A large upload is already
    on disk (Django streamed it to a temporary file) and is read there, in chunks, for its hash: no second copy.
    Anything else (a small upload held in memory, bytes from a baseline run) is written to ``folder``."""
    temporary = getattr(file, "temporary_file_path", None)
    if temporary is not None:
        path, digest, size = Path(temporary()), hashlib.sha256(), 0
        with path.open("rb") as source:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                digest.update(chunk)
        return path, digest.hexdigest(), size
    if isinstance(file, bytes | bytearray):
        file = io.BytesIO(file)
    path = folder / "model.onnx"
    digest, size = hashlib.sha256(), 0
    chunks: Iterable[bytes] = file.chunks(CHUNK) if hasattr(file, "chunks") else iter(lambda: file.read(CHUNK), b"")
    with path.open("wb") as sink:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            digest.update(chunk)
            sink.write(chunk)
    return path, digest.hexdigest(), size


def _day_start() -> datetime:
    now = timezone.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def submission_quota_left(*, user) -> int:
    """Today's places left: live and succeeded submissions take one, and so do failed ones unless the platform
    was at fault; cancelled ones give theirs back."""
    counted = Q(status__in=QUOTA_STATUSES) | (Q(status=SubmissionStatus.FAILED) & ~Q(failure_code__in=PLATFORM_FAULTS))
    used = Submission.objects.filter(counted, submitter=user, created_at__gte=_day_start(), is_baseline=False).count()
    return max(0, submission_settings().daily_quota - used)


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
    refuse_control_characters(name, field="name")  # shown on the public board: no bidi spoofing, one line
    refuse_control_characters(description, field="description", multiline=True)
    max_bytes = submission_settings().max_bytes
    with tempfile.TemporaryDirectory(prefix="submission-") as folder:
        path, sha256, size = _on_disk(file, folder=Path(folder), max_bytes=max_bytes)
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
                        f"You have made {submission_settings().daily_quota} submissions today; try again tomorrow.",
                        status_code=429,
                        quota_left=0,
                    )
                if not isinstance(file, bytes) and hasattr(file, "temporary_file_path"):
                    stored = default_storage.save(submission.file.name, file)  # local storage moves the file
                else:
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
    """A queued or running submission of ``user`` is cancelled and gives its quota place back (a running one's
    sandbox is killed at the evaluation's next heartbeat); a finished one is a 409."""
    with transaction.atomic():
        submission = submission_get_owned(user=user, submission_id=submission_id, lock=True)
        if submission.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
            raise ServiceError(
                "submission_not_cancellable",
                f"The submission is {submission.status}; only a queued or running one can be cancelled.",
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
class EvaluationBusy(Exception):
    """The submitter already has an evaluation running: this one waits (the task retries it later)."""


@dataclass
class Scored:
    counts: ErrorCounts
    utterances: int
    frames: int


def _score(entries: list[ReleaseEntry], hypotheses: dict[str, list[str]], frames: dict[str, int]) -> Scored:
    """PER of the sandbox's decoded phones against the labels, which never leave this process. The hypotheses
    are bounded by the sandbox's frame check (at most ceil(samples / 160) + slack phones each)."""
    references = [[p for word in e.phones for p in word] for e in entries]
    decoded = [hypotheses[e.utt_id] for e in entries]
    return Scored(corpus_counts(references, decoded), len(entries), sum(int(frames[e.utt_id]) for e in entries))


def _waveform(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle:
        samples, rate = sf.read(io.BytesIO(handle.read()), dtype="float32", always_2d=False)
    if rate != exports.SAMPLE_RATE:
        raise ValueError(f"{name} is {rate} Hz, not {exports.SAMPLE_RATE}")
    return samples if samples.ndim == 1 else samples.mean(axis=1)


def _stale_after() -> timedelta:
    return submission_settings().heartbeat_stale


def _is_live(row: Submission | SubmissionResult, now: datetime) -> bool:
    beat = row.heartbeat_at or row.started_at
    return beat is not None and now - beat < _stale_after()


def _claim_reevaluation(submission: Submission, release_id: int) -> SubmissionResult | None:
    """The submission's result row on ``release_id``, created or taken over as running (``succeeded`` null) with a
    fresh heartbeat; None when it is finished or a live worker holds it. Called under the submission's lock."""
    if submission.status != SubmissionStatus.SUCCEEDED or not Release.objects.filter(pk=release_id).exists():
        return None
    now = timezone.now()
    result = SubmissionResult.objects.select_for_update().filter(submission=submission, release_id=release_id).first()
    if result is None:
        result = SubmissionResult(submission=submission, release_id=release_id, succeeded=None)
    elif result.succeeded is not None or _is_live(result, now):
        return None  # scored (or failed) on it already, or a redelivery while a live worker holds it
    result.started_at = result.heartbeat_at = now
    result.attempts += 1
    result.save()
    return result


def _claim(submission_id: int, release_id: int | None) -> tuple[Submission, SubmissionResult | None] | None:
    """The submission, marked running for a first evaluation, or with its result row on ``release_id`` marked
    running for a re-evaluation; None when there is nothing left to do. Raises :class:`EvaluationBusy` while
    another submission of the same account is being evaluated for the first time."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return None
        if release_id is not None:  # a re-evaluation on another release
            running = _claim_reevaluation(submission, release_id)
            return None if running is None else (submission, running)
        now = timezone.now()
        if submission.status == SubmissionStatus.RUNNING and _is_live(submission, now):
            return None  # a redelivery while a live worker holds it
        if submission.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
            return None  # finished or cancelled: a redelivery does nothing
        others_running = Submission.objects.filter(
            submitter_id=submission.submitter_id, status=SubmissionStatus.RUNNING
        ).exclude(pk=submission.pk)
        if any(_is_live(other, now) for other in others_running):
            raise EvaluationBusy(submission_id)
        submission.status = SubmissionStatus.RUNNING
        submission.started_at = submission.heartbeat_at = now
        submission.attempts += 1
        submission.claims += 1
        submission.save(update_fields=["status", "started_at", "heartbeat_at", "attempts", "claims"])
        return submission, None


def _submission_fence(submission_id: int, claim: int) -> Fence[Submission]:
    """A first evaluation's claim: the submission is its worker's while it runs under that claim's number."""
    return Fence(Submission, submission_id, claim, counter="claims", holds=Q(status=SubmissionStatus.RUNNING))


def _result_fence(result_id: int, attempt: int) -> Fence[SubmissionResult]:
    """A re-evaluation's claim: its result row is its worker's while it runs (no verdict) under that attempt."""
    return Fence(SubmissionResult, result_id, attempt, holds=Q(succeeded__isnull=True))


def _fence(submission: Submission, running: SubmissionResult | None) -> Fence[Any]:
    if running is None:
        return _submission_fence(submission.pk, submission.claims)
    return _result_fence(running.pk, running.attempts)


def _heartbeat(submission_id: int, claim: int) -> bool:
    """The evaluation's sign of life; False when this claim no longer holds the submission (cancelled, reaped or
    claimed again), so that a worker taken for dead stops."""
    return bool(_submission_fence(submission_id, claim).rows().update(heartbeat_at=timezone.now()))


def _result_heartbeat(result_id: int, attempt: int) -> bool:
    """A re-evaluation's sign of life; False when its row is no longer this attempt's (failed by the reaper, or
    claimed again by a later delivery), so that a worker taken for dead stops."""
    return bool(_result_fence(result_id, attempt).rows().update(heartbeat_at=timezone.now()))


def _ticker(fence: Fence[Any], heartbeat: Heartbeat) -> Callable[[], bool]:
    """The sandbox's tick: a fenced beat on the claimed row (the submission for a first evaluation, its result row
    for a re-evaluation); False, which kills the child, once the claim no longer holds the row."""
    beat = _heartbeat if fence.model is Submission else _result_heartbeat
    return lambda: not heartbeat.lost and beat(fence.pk, fence.token)


def _beat_seconds() -> float:
    return submission_settings().heartbeat_s


def _sandbox_limits() -> SandboxLimits:
    return SandboxLimits(**submission_settings().sandbox)


def _latest_ready_release() -> Release | None:
    return Release.objects.filter(status=ReleaseStatus.READY).order_by("-created_at", "-id").first()


class PublicRejection(SubmissionRejected):
    """A refusal whose message reveals nothing hidden (it came from the public probes): shown as it is."""


def probe_waveforms(public: list[ReleaseEntry], release: Release) -> dict[str, np.ndarray]:
    """Silence, a 440 Hz tone and (where the release has one) its first public test clip."""
    n = int(PROBE_SECONDS * exports.SAMPLE_RATE)
    t = np.arange(n, dtype=np.float32) / exports.SAMPLE_RATE
    probes = {
        "probe-silence": np.zeros(n, dtype=np.float32),
        "probe-tone": (0.1 * np.sin(2 * math.pi * 440.0 * t)).astype(np.float32),
    }
    if public:
        probes[public[0].utt_id] = _waveform(f"{release.storage_prefix}/{public[0].audio}")
    return probes


def _run(submission: Submission, release: Release, tick: Callable[[], bool] | None) -> SubmissionResult:
    """Everything but bookkeeping; raises SubmissionRejected (PublicRejection for a probe's) or Cancelled. A blind
    release ranks on its hidden split (the public test split beside it); one without a hidden split ranks on the
    public test split alone, and ``per_hidden`` stays empty."""
    started = time.perf_counter()
    # TIMIT's protocol: shared prompts (its SA) are neither scored nor in the bigram (exports.scored_entries).
    published = release_public_entries(release=release)
    public = scored_entries(e for e in published if e.split == "test")
    blind = release_blind(release=release)
    hidden = scored_entries(release_hidden_entries(release=release)) if blind else []
    if blind and not hidden:
        raise SubmissionRejected("release_no_hidden_split", f"Release {release.version} has no hidden test split.")
    if not blind and not public:
        raise SubmissionRejected("release_no_test_split", f"Release {release.version} has no scored test clips.")
    train = bigram_transcripts(published)
    limits = _sandbox_limits()
    classes = CLASSES[SubmissionDecoder(submission.decoder)]
    tick_seconds = _beat_seconds()
    sweep_temp_folders()  # a killed pool process of this host may have left test audio behind
    with evaluation_folder() as folder:
        model_path = Path(folder) / "model.onnx"
        with submission.file.open("rb") as source, model_path.open("wb") as sink:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                sink.write(chunk)
        if hashlib.sha256(model_path.read_bytes()).hexdigest() != submission.sha256:
            raise SubmissionRejected("submission_file_changed", "The stored model does not match its checksum.")
        sandboxed = functools.partial(
            run_sandboxed,
            classes=classes,
            decoder=submission.decoder,
            train_transcripts=train,
            tick=tick,
            tick_seconds=tick_seconds,
        )
        # 1. Public probes, before any hidden audio is read: a failure here reveals nothing and is explained.
        try:
            sandboxed(model_path, probe_waveforms(public, release), limits=dataclasses.replace(limits, rtf_runs=0))
        except SubmissionRejected as exc:
            message = f"{failure_sentence(exc.code)} On a public probe input: {exc.message}"
            raise PublicRejection(exc.code, message) from exc
        # 2. The hidden split (and the public test split, or that alone when the release has no hidden split):
        # failures say only their code's sentence.
        waveforms = {e.utt_id: _waveform(f"{release.private_prefix}/{e.audio}") for e in hidden}
        waveforms |= {e.utt_id: _waveform(f"{release.storage_prefix}/{e.audio}") for e in public}
        result = sandboxed(model_path, waveforms, limits=limits, metrics=True)
        del waveforms
    hypotheses, frames = result.hypotheses, result.frames
    if hypotheses is None or frames is None:  # the sandbox returns them whenever a decoder ran, as here
        raise RuntimeError(f"submission {submission.pk}: the sandbox decoded but returned no hypotheses")
    public_scored = _score(public, hypotheses, frames) if public else None
    ranked = _score(hidden, hypotheses, frames) if blind else public_scored
    if ranked is None:  # not blind: the public test split was found non-empty above
        raise SubmissionRejected("release_no_test_split", f"Release {release.version} has no scored test clips.")
    metrics = result.metrics or {}
    rtf = result.rtf_runs or [0.0]
    return SubmissionResult(
        submission=submission,
        release=release,
        per_hidden=ranked.counts.per if blind else None,
        reference_phones=ranked.counts.reference,
        substitutions=ranked.counts.substitutions,
        deletions=ranked.counts.deletions,
        insertions=ranked.counts.insertions,
        utterances=ranked.utterances,
        frames=ranked.frames,
        per_public=public_scored.counts.per if public_scored else None,
        public_reference_phones=public_scored.counts.reference if public_scored else 0,
        parameters=metrics.get("parameters"),
        depth=metrics.get("depth"),
        macs_per_second=metrics.get("macs_per_second"),
        rtf_median=statistics.median(rtf),
        rtf_min=min(rtf),
        rtf_max=max(rtf),
        isolation=result.isolation,
        seconds=time.perf_counter() - started,
    )


def submission_evaluate(*, submission_id: int, release_id: int | None = None) -> Submission | None:
    """Evaluate a submission on ``release_id`` (default: the latest ready release, for its first evaluation).
    Idempotent: a finished or cancelled submission, or one already scored on that release, is left alone.
    Raises :class:`EvaluationBusy` while the same account has another evaluation running. A worker whose claim is
    cancelled, reaped or superseded on the way stops and records nothing."""
    claimed = _claim(submission_id, release_id)
    if claimed is None:
        return None
    submission, running = claimed
    fence = _fence(submission, running)
    try:
        _evaluate(submission, running, fence)
    except (Cancelled, Superseded) as exc:
        # Not an error: the owner cancelled it, or another worker holds it now. No traceback; the row is left alone.
        logger.warning("evaluation of submission %s stops: it is no longer this worker's (%s)", submission_id, exc)
    submission.refresh_from_db()
    return submission


def _evaluate(submission: Submission, running: SubmissionResult | None, fence: Fence[Any]) -> None:
    """Run the claimed evaluation under the heartbeat thread, then record its verdict through the fence (after
    the thread has stopped: recording takes the row's lock, which the thread may be waiting on)."""
    release = Release.objects.filter(pk=running.release_id).first() if running else _latest_ready_release()
    target = release if running else None
    failure: tuple[str, str, str] | None = None
    with Heartbeat(fence, every=_beat_seconds()) as heartbeat:
        try:
            if release is None or release.status != ReleaseStatus.READY:
                raise SubmissionRejected("release_unavailable", "There is no ready release to evaluate on.")
            result = _run(submission, release, _ticker(fence, heartbeat))
            heartbeat.check()
        except (Cancelled, Superseded):
            raise
        except PublicRejection as exc:
            failure = (exc.code, exc.message, exc.message)
        except SubmissionRejected as exc:
            failure = (exc.code, failure_sentence(exc.code), exc.message)
        except Exception as exc:  # the worker survives anything a model or its data can do; operators see the log
            logger.exception("evaluation of submission %s failed", submission.pk)
            code = "eval_internal_error"
            failure = (code, failure_sentence(code), f"{type(exc).__name__}: {exc}")
    if failure is None:
        _record_success(fence, result)
    else:
        _record_failure(fence, target, *failure)


# What a re-evaluation's running row keeps of itself when its result is written into it.
RUN_FIELDS = frozenset({"id", "submission", "release", "created_at", "started_at", "attempts"})


def _record_success(fence: Fence[Any], result: SubmissionResult) -> None:
    """Through the claim's fence: a re-evaluation's result goes into its running row; a first evaluation's is
    created, and its submission succeeds, in one step. :class:`Superseded` when the claim no longer holds."""
    with transaction.atomic():
        row = fence.lock()
        if isinstance(row, SubmissionResult):  # a re-evaluation's running row takes the result
            for field in SubmissionResult._meta.concrete_fields:
                if field.name not in RUN_FIELDS:
                    setattr(row, field.attname, getattr(result, field.attname))
            row.succeeded, row.heartbeat_at = True, timezone.now()
            row.save()
            return
        try:
            with transaction.atomic():
                result.save()
        except IntegrityError:
            return  # recorded on this release already
        row.status = SubmissionStatus.SUCCEEDED
        row.release = result.release
        row.failure_code = row.failure_message = row.failure_detail = ""
        row.finished_at = timezone.now()
        fields = ["status", "release", "failure_code", "failure_message", "failure_detail", "finished_at"]
        row.save(update_fields=fields)


def _record_failure(fence: Fence[Any], release: Release | None, code: str, message: str, detail: str) -> None:
    """``message`` is what the submitter reads; ``detail`` (which may name hidden utterances) is for operators.
    A re-evaluation's failure goes on its result row (the submission keeps its status); a first evaluation's on
    the submission. Through the claim's fence: :class:`Superseded` when the claim no longer holds."""
    failure = {"failure_code": code, "failure_message": message[:2000], "failure_detail": detail[:10_000]}
    if release is not None:
        fence.update(succeeded=False, **failure)
        return
    fence.update(status=SubmissionStatus.FAILED, finished_at=timezone.now(), **failure)


# --- the reaper ---------------------------------------------------------------------------------------------------
def _max_recoveries() -> int:
    return submission_settings().max_recoveries


def _lost_detail(row: Submission | SubmissionResult) -> str:
    return f"No heartbeat since {row.heartbeat_at}; the worker was lost on each of {row.attempts} attempts."


def submissions_reap() -> dict[str, int]:
    """Periodic: an evaluation whose worker went silent (stale heartbeat) is re-queued, up to
    ``SUBMISSION_MAX_RECOVERIES`` times, then failed with ``eval_worker_lost``. A first evaluation's failure counts
    towards the submitter's quota (a model that kills its worker each time must not be evaluated for free); a
    re-evaluation's is recorded on its release. Dead workers' temp folders go."""
    stale_after, max_attempts = _stale_after(), _max_recoveries() + 1  # the first try, then the recoveries
    first = reap_silent(
        Submission.objects.filter(status=SubmissionStatus.RUNNING),
        stale_after=stale_after,
        max_attempts=max_attempts,
        requeue=_requeue_evaluation,
        fail=_fail_evaluation,
    )
    again = reap_silent(
        SubmissionResult.objects.filter(succeeded__isnull=True),
        stale_after=stale_after,
        max_attempts=max_attempts,
        requeue=_requeue_reevaluation,
        fail=_fail_reevaluation,
    )
    counts = {way: first[way] + again[way] for way in first}
    return {**counts, "folders": sweep_temp_folders()}


def _requeue_evaluation(submission: Submission) -> None:
    # Queued again, so the silent worker's fence (which holds only while it runs) no longer holds.
    submission.status = SubmissionStatus.QUEUED
    submission.heartbeat_at = None
    submission.save(update_fields=["status", "heartbeat_at"])
    pk = submission.pk
    transaction.on_commit(lambda: _enqueue(pk))


def _fail_evaluation(submission: Submission, now: datetime) -> None:
    _lost(submission)
    submission.status = SubmissionStatus.FAILED
    submission.finished_at = now
    submission.save(update_fields=["status", "failure_code", "failure_message", "failure_detail", "finished_at"])


def _requeue_reevaluation(result: SubmissionResult) -> None:
    # The token (``attempts``) goes up at the next claim; a silent worker that comes back before it may still
    # finish the re-score, and the re-queued message then finds nothing to do.
    result.started_at = result.heartbeat_at = None
    result.save(update_fields=["started_at", "heartbeat_at"])
    submission_id, release_id = result.submission_id, result.release_id
    transaction.on_commit(lambda: _enqueue(submission_id, release_id))


def _fail_reevaluation(result: SubmissionResult, now: datetime) -> None:
    _lost(result)
    result.succeeded = False
    result.save(update_fields=["succeeded", "failure_code", "failure_message", "failure_detail"])


def _lost(row: Submission | SubmissionResult) -> None:
    row.failure_code = "eval_worker_lost"
    row.failure_message = failure_sentence(row.failure_code)
    row.failure_detail = _lost_detail(row)


# --- an operator's re-run -----------------------------------------------------------------------------------------
def submission_rerun(*, submission_id: int, release_id: int | None = None) -> str:
    """An operator's re-run, through the same task, claim and heartbeat as every evaluation (so the reaper covers
    it): a succeeded submission is re-scored on ``release_id`` (default the latest ready release), replacing a
    failed result there; a failed one is queued for its first evaluation again, its attempts reset (and its quota
    place taken again: the operator's call). Returns ``"reevaluation"``, ``"evaluation"`` or ``"nothing"`` (queued
    or running already, or scored on that release)."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None:
            raise ServiceError("submission_unknown", f"There is no submission {submission_id}.", status_code=404)
        if submission.status == SubmissionStatus.FAILED:
            submission.status = SubmissionStatus.QUEUED
            submission.attempts = 0
            submission.started_at = submission.heartbeat_at = submission.finished_at = None
            submission.failure_code = submission.failure_message = submission.failure_detail = ""
            submission.save()
            transaction.on_commit(lambda: _enqueue(submission_id))
            return "evaluation"
        if submission.status != SubmissionStatus.SUCCEEDED:
            return "nothing"
        release = Release.objects.filter(pk=release_id).first() if release_id else _latest_ready_release()
        if release is None or release.status != ReleaseStatus.READY:
            raise ServiceError("release_unavailable", "There is no ready release to evaluate on.", status_code=409)
        previous = SubmissionResult.objects.select_for_update().filter(submission=submission, release=release).first()
        if previous is not None and previous.succeeded is not False:
            return "nothing"  # scored there already, or being re-evaluated now
        if previous is not None:
            previous.delete()
        transaction.on_commit(lambda: _enqueue(submission_id, release.pk))
        return "reevaluation"


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
