"""The worker's side of a training run: claim the row, train (resuming), evaluate, export, publish, submit.

Every delivery of the task calls :func:`run_execute`. It claims the run under a row lock and does nothing when
the run is finished, waiting for a teacher, or held by a live worker (one whose heartbeat is fresh). A run whose
worker died (SIGKILL, lost machine) has a stale heartbeat: the redelivered task takes it over and
``training.ml`` resumes from the last epoch's checkpoint, so the run finishes exactly once. Progress and the
curves are written at most every ``TRAINING_PROGRESS_SECONDS``; that is also when a cancel request is seen.

Each claim is fenced (:mod:`core.fencing`): the claim's attempt number is its token, and every write the worker
makes to the row (progress, log, curves, checkpoint, final status) is conditional on it, so a worker whose run
was taken over changes nothing and stops at its next write or report. A background thread beats the heartbeat
through every stage, the ones that report no progress included (features, a wait on another run's file lock,
export, uploads), so a run is taken over only when its worker is really gone. The files a worker publishes go
under its attempt's own folder in storage (``training/runs/ID/attempt-N/``) and the row points at them, so a
superseded worker's late upload can never replace what the live one published: the row names only the files of
the claim that holds it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from benchmark.leaderboard.services import submission_create
from benchmark.models import SubmissionDecoder
from core.errors import ServiceError
from core.fencing import Fence, Heartbeat, Superseded
from training.conf import training_settings
from training.ml import pipeline
from training.ml.config import Config, save_config
from training.ml.data import store_dir
from training.ml.train import resolve_device
from training.models import FINISHED, TrainingRecipe, TrainingRun, TrainingRunStatus
from training.services import files
from training.services.runs import dependencies_of, students_fail, students_ready_enqueue

logger = logging.getLogger(__name__)

BASELINE_USERNAME = "openphone-baselines"
# What a finished run publishes beside its checkpoint (hmm.pt: its alignment's HMM, when the aligner trained one).
EXPORTS = ("model.onnx", "metrics.json", "config.json", pipeline.HMM)
LOG_LIMIT = 100_000  # characters of a run's log kept on its row


class RunCancelled(Exception):
    """Raised from the progress callback when someone asked the run to stop."""


class Outcome:
    CLAIMED = "claimed"
    FINISHED = "finished"
    WAITING = "waiting"  # for a teacher or ensemble member
    BUSY = "busy"  # a live worker holds it
    MISSING = "missing"
    SUBMIT = "submit"  # succeeded, but its baseline submission is still to be made
    SUPERSEDED = "superseded"  # another claim took the run over while this worker held it: it stopped


def _stale_after() -> timedelta:
    return training_settings().heartbeat_stale


def _beat_seconds() -> float:
    """Ten beats per stale period: a run goes stale only after ten missed beats in a row."""
    return training_settings().heartbeat_stale_s / 10


def run_fence(run: TrainingRun) -> Fence[TrainingRun]:
    """The fence of ``run``'s current claim: its attempt number, while the run is running."""
    return Fence(TrainingRun, run.pk, run.attempts, holds=Q(status=TrainingRunStatus.RUNNING))


def _save(run: TrainingRun, fence: Fence[TrainingRun], fields: list[str]) -> None:
    """Write ``fields`` of the worker's copy of the run, if its claim still holds the row."""
    fence.update(**{name: getattr(run, name) for name in fields})


def append_log(run: TrainingRun, line: str) -> None:
    stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
    run.log = (run.log + f"{stamp} {line}\n")[-LOG_LIMIT:]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _finish(fence: Fence[TrainingRun], status: str, *, code: str = "", message: str = "", **fields: Any) -> TrainingRun:
    """Record the end of the run this worker's claim holds (:class:`Superseded` when it no longer does); waiting
    students are enqueued (or failed) in the same step."""
    with transaction.atomic():
        run = fence.lock()
        for name, value in fields.items():
            setattr(run, name, value)
        run.status = status
        run.finished_at = timezone.now()
        run.error_code, run.error = code, message[:4000]
        append_log(run, f"{status}" + (f": {code}: {message.splitlines()[0] if message else ''}" if code else ""))
        run.save()
        if status == TrainingRunStatus.SUCCEEDED:
            students_ready_enqueue(run=run)
        else:
            students_fail(run=run)
        return run


def _claim(run_id: int) -> tuple[str, TrainingRun | None]:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return Outcome.MISSING, None
        if run.status == TrainingRunStatus.SUCCEEDED and run.submission_id is None and run.onnx:
            return Outcome.SUBMIT, run
        if run.status in FINISHED:
            return Outcome.FINISHED, run
        if run.cancel_requested:
            run.status, run.finished_at = TrainingRunStatus.CANCELLED, timezone.now()
            append_log(run, "cancelled before it started")
            run.save(update_fields=["status", "finished_at", "log"])
            students_fail(run=run)
            return Outcome.FINISHED, run
        dependencies = dependencies_of(run)
        broken = [d for d in dependencies if d.status in (TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED)]
        if broken:
            run.status, run.finished_at = TrainingRunStatus.FAILED, timezone.now()
            run.error_code, run.error = "teacher_failed", f"Run {broken[0].pk}, which this run learns from, failed."
            run.save(update_fields=["status", "finished_at", "error_code", "error"])
            students_fail(run=run)
            return Outcome.FINISHED, run
        if any(d.status != TrainingRunStatus.SUCCEEDED for d in dependencies):
            return Outcome.WAITING, run
        now = timezone.now()
        if run.status == TrainingRunStatus.RUNNING:
            if run.heartbeat_at and now - run.heartbeat_at < _stale_after():
                return Outcome.BUSY, run
            append_log(run, f"worker {run.worker or '?'} went silent at {run.heartbeat_at}; taking the run over")
        run.status = TrainingRunStatus.RUNNING
        run.attempts += 1
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.worker = _worker_name()
        append_log(run, f"attempt {run.attempts} on {run.worker}")
        run.save()
        return Outcome.CLAIMED, run


# --- the local view of a run ----------------------------------------------------------------------------------------
def run_config(run: TrainingRun) -> Config:
    """The run's config with this machine's paths: the release's work dir and manifest, teachers' directories."""
    config = Config.from_dict(run.config)
    config.work_dir = str(files.release_work_dir(run.release))
    config.data.manifest = str(files.release_manifest(run.release))
    config.train.progress = False
    if run.teacher is not None:  # no query when teacher_id is None
        config.train.teacher = str(local_run_dir(run.teacher))
    if run.recipe == TrainingRecipe.ENSEMBLE:
        config.model.members = [str(local_run_dir(m)) for m in run.members.order_by("pk")]
    return config


def local_run_dir(run: TrainingRun):
    """A run's directory on this machine as training.ml reads it (config.json, checkpoint), fetched if needed."""
    folder = files.fetch_run(run)
    save_config(run_config(run), folder / "config.json")
    return folder


# --- progress -------------------------------------------------------------------------------------------------------
@dataclass
class Reporter:
    """The training loop's callback: live progress, curves, checkpoints to storage, cancel checks; every write
    fenced by the worker's claim, and a claim the heartbeat thread saw superseded stops the loop at once."""

    run: TrainingRun
    fence: Fence[TrainingRun]
    heartbeat: Heartbeat
    every: float
    last_write: float = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        self.heartbeat.check()
        kind = event["event"]
        progress: dict[str, Any] = {"stage": event.get("stage", ""), "event": kind}
        fields = ["progress", "heartbeat_at"]
        stored = replaced = ""  # the checkpoint this report stores, and the one it retires
        if kind == "align":
            progress.update(round=event["round"], rounds=event["rounds"])
            append_log(
                self.run,
                f"alignment round {event['round']}: {100 * event['changed']:.1f} % of labels changed, "
                f"classifier dev accuracy {100 * event['classifier_dev_acc']:.1f} %",
            )
            fields.append("log")
        elif event.get("stage") == "aligner":
            progress["stage"] = "align"
        elif kind == "decode":
            progress.update(point=event["point"], points=event["points"])
        else:  # the model's own epochs, whose stage training.ml names after the run's folder
            progress.update(stage="train", epoch=event["epoch"], epochs=event["epochs"], step=event["step"])
            if kind == "step":
                rate = event["seconds"] / max(1, event["batch"])
                remaining = (event["batches"] - event["batch"]) + (event["epochs"] - event["epoch"]) * event["batches"]
                progress.update(
                    batch=event["batch"], batches=event["batches"], loss=event["loss"], eta_seconds=remaining * rate
                )
            else:
                record = event["record"]
                self.run.history = event.get("history", [*self.run.history, record])
                self.run.frames_per_second = record.get("frames_per_s")
                stored = files.store_checkpoint(self.run, epoch=event["epoch"])
                replaced, self.run.checkpoint = self.run.checkpoint, stored
                append_log(
                    self.run,
                    f"epoch {event['epoch']}/{event['epochs']}: "
                    + ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch"),
                )
                fields += ["history", "frames_per_second", "checkpoint", "log"]
        now = time.monotonic()
        if kind in ("step", "decode") and now - self.last_write < self.every:
            return
        self.last_write = now
        self.run.progress = progress
        self.run.heartbeat_at = timezone.now()
        try:
            _save(self.run, self.fence, fields)
        except Superseded:
            files.delete_file(stored)  # no row will ever name it; the one the row names stays for the new worker
            raise
        if stored and replaced != stored:
            files.delete_file(replaced)  # the row names the new one now, and only this claim could name another
        if TrainingRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise RunCancelled

    def stage(self, name: str) -> None:
        self.heartbeat.check()
        self.run.progress = {**self.run.progress, "stage": name, "event": "stage"}
        self.run.heartbeat_at = timezone.now()
        append_log(self.run, name)
        _save(self.run, self.fence, ["progress", "heartbeat_at", "log"])


def _hardware() -> dict[str, Any]:
    device = resolve_device("auto")
    info: dict[str, Any] = {"device": device.type, "threads": torch.get_num_threads(), "torch": torch.__version__}
    info["name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return info


# --- the task's body ------------------------------------------------------------------------------------------------
def run_execute(*, run_id: int) -> str:
    """Train, evaluate, export and publish run ``run_id``; returns what happened (an Outcome or a final status).
    A worker whose claim is superseded on the way stops there, logs it and returns ``Outcome.SUPERSEDED``."""
    outcome, run = _claim(run_id)
    if outcome == Outcome.SUBMIT:
        baseline_submit(run_id=run_id)
        return TrainingRunStatus.SUCCEEDED
    if outcome != Outcome.CLAIMED or run is None:  # a claimed run is never None
        return outcome
    fence = run_fence(run)
    try:
        status, fields = _train(run, fence)
        _finish(fence, status, **fields)
    except Superseded as exc:
        # Not an error: another worker holds the run and will finish it. No traceback, and the row is left alone;
        # so are this attempt's checkpoints, which the row may still name (the new worker resumes from them).
        for name in EXPORTS:
            files.delete_file(f"{files.attempt_prefix(run)}/{name}")  # only a finished row names these
        logger.warning("training run %s: attempt %s stops: %s", run_id, fence.token, exc)
        return Outcome.SUPERSEDED
    if status == TrainingRunStatus.SUCCEEDED:
        baseline_submit(run_id=run_id)
    return status


def _train(run: TrainingRun, fence: Fence[TrainingRun]) -> tuple[str, dict[str, Any]]:
    """Everything between the claim and the final status, under the heartbeat thread; returns the status and the
    fields to finish with. The heartbeat stops before the caller takes the row's lock to finish."""
    with Heartbeat(fence, every=_beat_seconds()) as heartbeat:
        reporter = Reporter(run, fence, heartbeat, every=training_settings().progress_s)
        try:
            config = run_config(run)
            folder = files.fetch_run(run)
            run.hardware = _hardware()
            _save(run, fence, ["hardware"])
            append_log(
                run,
                f"features {store_dir(config).relative_to(config.work_dir)}, "
                f"alignment {pipeline.alignment_dir(config).relative_to(config.work_dir)} (under {config.work_dir})",
            )
            reporter.stage("train")
            pipeline.train(config, folder, callback=reporter)
            reporter.stage("evaluate")
            metrics = pipeline.evaluate(folder, splits=("test",), callback=reporter)
            reporter.stage("export")
            prefix = files.attempt_prefix(run)
            onnx = files.store_file(pipeline.export(folder), f"{prefix}/model.onnx")
            for name in ("metrics.json", "config.json"):
                files.store_file(folder / name, f"{prefix}/{name}")
            # The HMM its alignment trained, for release builds to start from (a CTC run aligns nothing).
            hmm_file = pipeline.alignment_dir(config) / pipeline.HMM
            uses_hmm = hmm_file.exists() and not pipeline.is_ctc(config)
            hmm = files.store_file(hmm_file, f"{prefix}/{pipeline.HMM}") if uses_hmm else ""
            heartbeat.check()
        except RunCancelled:
            return TrainingRunStatus.CANCELLED, {"log": run.log}
        except Superseded:
            raise
        except Exception as exc:  # the worker survives any run; the reason is on the row and in the log
            logger.exception("training run %s failed", run.pk)
            append_log(run, traceback.format_exc())
            message = f"{type(exc).__name__}: {exc}"
            return TrainingRunStatus.FAILED, {"code": "training_error", "message": message, "log": run.log}
    history_file = folder / "history.json"
    return TrainingRunStatus.SUCCEEDED, {
        "metrics": metrics,
        "parameters": metrics["parameters"],
        "onnx": onnx,
        "hmm": hmm,
        "history": json.loads(history_file.read_text()) if history_file.exists() else run.history,
        "log": run.log,
    }


# --- the baseline on the leaderboard ----------------------------------------------------------------------------
def baseline_user():
    user, created = get_user_model().objects.get_or_create(username=BASELINE_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def baseline_name(run: TrainingRun) -> str:
    model = run.config.get("model", {})
    kind = model.get("kind")
    if kind == "dnn":
        size = f"DNN {model['depth']}x{model['width']}"
    elif kind == "cnn":
        size = f"CNN {model['conv_channels']} filters + {model['depth']}x{model['width']}"
    elif kind == "snn":
        size = f"SNN {model['width']} (k={model['bottleneck']})"
    elif kind == "blstm":
        size = f"BiLSTM {model['depth']}x{model['width']}"
    else:
        size = f"ensemble of {run.members.count()}"
    roles: dict[str, str] = {  # by str: run.recipe as read from the database
        TrainingRecipe.MIMIC: f"mimic of run {run.teacher_id}"
        + (" (soft targets)" if run.objective == "mimic_soft" else ""),
        TrainingRecipe.SNN_LABELS: "on labels",
        TrainingRecipe.BLSTM_CTC: "CTC peer",
    }
    return f"{size} {roles.get(run.recipe, 'teacher')} · run {run.pk}"[:100]


def baseline_decoder(config: dict) -> SubmissionDecoder:
    """The leaderboard decoder a run's export is scored with: a CTC model's export has 41 classes (the blank last)
    and is decoded greedily; a frame classifier's goes through the HMM/bigram decoder its own evaluation used."""
    if config.get("train", {}).get("objective") == "ctc":
        return SubmissionDecoder.GREEDY_CTC
    return SubmissionDecoder.HMM_BIGRAM


def baseline_submit(*, run_id: int) -> TrainingRun:
    """Submit a succeeded run's ONNX export through exactly the path a researcher's model takes; once."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.submission_id is not None or run.status != TrainingRunStatus.SUCCEEDED or not run.onnx:
            return run
        test = run.metrics.get("test", {})
        decoder = baseline_decoder(run.config)
        ctc = decoder == SubmissionDecoder.GREEDY_CTC
        description = (
            f"Platform baseline: recipe {run.recipe}, objective {run.objective}, {run.parameters or 0:,} parameters, "
            f"trained on release {run.release.version}"
            + (
                f"; PER {100 * test['per']:.1f} % on its public test split with the "
                f"{'greedy CTC' if ctc else 'HMM/bigram'} decoder"
                if "per" in test
                else ""
            )
            + "."
        )
        try:
            with default_storage.open(run.onnx, "rb") as handle:
                run.submission = submission_create(
                    user=baseline_user(),
                    file=handle,
                    name=baseline_name(run),
                    description=description,
                    decoder=decoder,
                    is_baseline=True,
                )
            append_log(run, f"submitted to the leaderboard as submission {run.submission.pk}")
        except ServiceError as exc:
            run.error_code, run.error = "baseline_rejected", f"{exc.code}: {exc.message}"
            append_log(run, f"the leaderboard refused the export: {exc.code}: {exc.message}")
        run.save(update_fields=["submission", "error_code", "error", "log"])
    return run
