"""Training runs through their services: a teacher and its mimic train on a release, publish their artefacts and
reach the leaderboard as baselines; waiting, cancelling, resuming and bad input."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from benchmark.leaderboard.services import submission_evaluate
from benchmark.models import Submission, SubmissionStatus
from core.errors import ServiceError
from training.models import TrainingRun, TrainingRunStatus
from training.services import execution
from training.services.runs import run_cancel, run_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


def test_a_teacher_and_its_mimic_train_publish_and_reach_the_leaderboard(release, django_capture_on_commit_callbacks):
    teacher = run_create(release="v1", recipe="teacher-dnn")
    mimic = run_create(release="v1", recipe="mimic", teacher=teacher.pk)
    assert teacher.status == mimic.status == TrainingRunStatus.QUEUED

    # The mimic waits for its teacher: a delivery before the teacher has finished does nothing.
    assert execution.run_execute(run_id=mimic.pk) == execution.Outcome.WAITING
    with django_capture_on_commit_callbacks() as callbacks:
        assert execution.run_execute(run_id=teacher.pk) == TrainingRunStatus.SUCCEEDED
    teacher.refresh_from_db()
    assert teacher.status == TrainingRunStatus.SUCCEEDED and teacher.attempts == 1
    assert [r["epoch"] for r in teacher.history] == [1, 2]
    assert all(r["loss"] > 0 and r["frames_per_s"] > 0 for r in teacher.history)
    # Scored, not defaulted: a two-epoch net is neither perfect nor silent.
    assert 0 < teacher.metrics["test"]["per"] <= 1.5 and 0 < teacher.metrics["test"]["frame_acc"] < 1
    assert teacher.hardware["device"] == "cpu"
    assert default_storage.exists(teacher.onnx) and default_storage.exists(teacher.checkpoint)
    # Finishing the teacher enqueued its waiting student and its baseline's evaluation (the on-commit hooks hold
    # the two task sends).
    assert len(callbacks) == 2

    # The baseline went through the researcher's path: a queued submission, then the sandboxed evaluation.
    baseline = teacher.submission
    assert baseline is not None and baseline.is_baseline and baseline.status == SubmissionStatus.QUEUED
    evaluated = submission_evaluate(submission_id=baseline.pk)
    assert evaluated.status == SubmissionStatus.SUCCEEDED, evaluated.failure_message
    result = evaluated.results.get()
    # The leaderboard counts every weight tensor of the graph, constants included: the net's weights, the
    # normaliser's 2 x 123, and the fixed feature front end (the DFT and mel filters, two constant-fed layers;
    # deltas are shifted differences) that every export carries in Constant nodes, so that hidden weights cannot
    # hide there.
    front_end = result.parameters - teacher.parameters - 2 * 123
    assert front_end > 100_000 and result.depth == 3 + 2

    assert execution.run_execute(run_id=mimic.pk) == TrainingRunStatus.SUCCEEDED
    mimic.refresh_from_db()
    assert mimic.objective == "mimic_l2" and mimic.config["model"]["kind"] == "snn"
    assert mimic.submission.is_baseline and "mimic of run" in mimic.submission.name
    # A redelivery of a finished run does nothing: no second attempt, no second submission.
    assert execution.run_execute(run_id=mimic.pk) == execution.Outcome.FINISHED
    mimic.refresh_from_db()
    assert mimic.attempts == 1
    assert Submission.objects.filter(is_baseline=True).count() == 2


def test_a_parameter_matched_student_gets_the_teachers_parameter_count(release):
    teacher = run_create(release="v1", recipe="teacher-dnn")
    student = run_create(release="v1", recipe="snn-labels")
    execution.run_execute(run_id=teacher.pk)
    execution.run_execute(run_id=student.pk)
    teacher.refresh_from_db()
    student.refresh_from_db()
    assert abs(student.parameters - teacher.parameters) / teacher.parameters < 0.02


def test_cancelling_a_queued_run_fails_its_waiting_students(release):
    teacher = run_create(release="v1", recipe="teacher-dnn")
    mimic = run_create(release="v1", recipe="mimic", teacher=teacher.pk)
    run_cancel(run_id=teacher.pk)
    teacher.refresh_from_db()
    mimic.refresh_from_db()
    assert teacher.status == TrainingRunStatus.CANCELLED
    assert mimic.status == TrainingRunStatus.FAILED and mimic.error_code == "teacher_failed"
    # A delivery that arrives after the cancel does nothing.
    assert execution.run_execute(run_id=teacher.pk) == execution.Outcome.FINISHED
    with pytest.raises(ServiceError) as refused:
        run_cancel(run_id=teacher.pk)
    assert refused.value.code == "run_finished" and refused.value.status_code == 409


def test_a_cancel_request_stops_a_running_run_at_its_next_report(release, monkeypatch):
    run = run_create(release="v1", recipe="teacher-dnn", overrides={"train.epochs": 5})
    train = execution.pipeline.train

    def train_cancelled_after_the_first_epoch(config, run_dir, stop_after=None, callback=None):
        """The training loop as the worker runs it, whose progress callback (the worker's reporter) is called as
        the operator cancels the run, once its first epoch has ended."""

        def report(event):
            if event["event"] == "epoch" and event["stage"] != "aligner" and event["epoch"] == 1:
                run_cancel(run_id=run.pk)
            callback(event)

        return train(config, run_dir, stop_after, report)

    monkeypatch.setattr(execution.pipeline, "train", train_cancelled_after_the_first_epoch)
    assert execution.run_execute(run_id=run.pk) == TrainingRunStatus.CANCELLED
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.CANCELLED and len(run.history) == 1 and run.submission is None


def test_a_run_held_by_a_live_worker_is_left_alone_and_a_dead_ones_is_taken_over(release, settings):
    from django.utils import timezone

    run = run_create(release="v1", recipe="teacher-dnn")
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRunStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1, worker="elsewhere:1"
    )
    assert execution.run_execute(run_id=run.pk) == execution.Outcome.BUSY
    settings.TRAINING_HEARTBEAT_STALE_SECONDS = 0
    assert execution.run_execute(run_id=run.pk) == TrainingRunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.attempts == 2 and "went silent" in run.log


def test_a_failing_run_records_why_and_the_worker_survives(release, monkeypatch):
    run = run_create(release="v1", recipe="teacher-dnn")
    mimic = run_create(release="v1", recipe="mimic", teacher=run.pk)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(execution.pipeline, "train", broken)
    assert execution.run_execute(run_id=run.pk) == TrainingRunStatus.FAILED
    run.refresh_from_db()
    mimic.refresh_from_db()
    assert run.error_code == "training_error" and "out of memory" in run.error and "Traceback" in run.log
    assert mimic.status == TrainingRunStatus.FAILED and mimic.error_code == "teacher_failed"


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"release": "nope", "recipe": "teacher-dnn"}, "release_unknown", 404),
        ({"release": "v1", "recipe": "deep-magic"}, "run_config_invalid", 400),
        ({"release": "v1", "recipe": "mimic"}, "run_teacher", 400),
        ({"release": "v1", "recipe": "teacher-dnn", "teacher": 1}, "run_teacher", 400),
        ({"release": "v1", "recipe": "mimic", "teacher": 99999}, "run_unknown", 404),
        ({"release": "v1", "recipe": "ensemble", "members": [1]}, "run_members", 400),
        ({"release": "v1", "recipe": "teacher-dnn", "overrides": {"model.colour": "red"}}, "run_config_invalid", 400),
        ({"release": "v1", "recipe": "teacher-dnn", "overrides": {"train.epochs": "many"}}, "run_config_invalid", 400),
        ({"release": "v1", "recipe": "mimic", "teacher": 1, "objective": "guess"}, "run_config_invalid", 400),
    ],
)
def test_bad_run_requests_are_refused_with_a_code(ready_release_row, kwargs, code, status):
    with pytest.raises(ServiceError) as refused:
        run_create(**kwargs)
    assert (refused.value.code, refused.value.status_code) == (code, status)
    assert not TrainingRun.objects.exists()


def test_a_mimic_of_a_mimic_is_refused(ready_release_row):
    teacher = run_create(release="v1", recipe="teacher-dnn")
    mimic = run_create(release="v1", recipe="mimic", teacher=teacher.pk)
    with pytest.raises(ServiceError) as refused:
        run_create(release="v1", recipe="mimic", teacher=mimic.pk)
    assert refused.value.code == "run_teacher"


def test_a_cnn_teacher_and_an_ensemble_train_and_a_mimic_learns_from_the_ensemble(release):
    dnn = run_create(release="v1", recipe="teacher-dnn")
    cnn = run_create(release="v1", recipe="teacher-cnn", overrides={"model.conv_channels": 8})
    ensemble = run_create(release="v1", recipe="ensemble", members=[dnn.pk, cnn.pk])
    mimic = run_create(release="v1", recipe="mimic", teacher=ensemble.pk)
    assert execution.run_execute(run_id=ensemble.pk) == execution.Outcome.WAITING
    for run in (dnn, cnn, ensemble, mimic):
        assert execution.run_execute(run_id=run.pk) == TrainingRunStatus.SUCCEEDED, run.pk
        run.refresh_from_db()
        assert run.submission is not None and default_storage.exists(run.onnx)
    assert cnn.config["model"]["kind"] == "cnn" and ensemble.config["model"]["kind"] == "ensemble"
    # The ensemble holds both members' weights; its depth is its deepest member's.
    assert ensemble.parameters == dnn.parameters + cnn.parameters
    assert ensemble.metrics["depth"] == max(dnn.metrics["depth"], cnn.metrics["depth"])
    assert "ensemble of 2" in ensemble.submission.name and mimic.config["model"]["kind"] == "snn"


def test_a_runs_alignment_gives_the_next_release_its_phone_times_and_its_hmm(release, settings):
    import json
    from pathlib import Path

    from tests.benchmark.conftest import build
    from training.ml.hmm_align import load_hmm
    from training.ml.pipeline import alignment_dir
    from training.ml.release_align import release_features

    run = run_create(release="v1", recipe="teacher-dnn", overrides={"train.epochs": 1})
    execution.run_execute(run_id=run.pk)
    # The run keeps the HMM its alignment trained (align.method "hmm", 2 Gaussians per state in the tiny recipe).
    run.refresh_from_db()
    assert run.hmm == f"{run.storage_prefix}/attempt-1/hmm.pt"
    with default_storage.open(run.hmm, "rb") as handle, open(settings.TRAINING_DIR / "run-hmm.pt", "wb") as out:
        out.write(handle.read())
    assert load_hmm(settings.TRAINING_DIR / "run-hmm.pt", features=release_features()).model.mixtures == 2
    alignments = alignment_dir(execution.run_config(run)) / "phn" / "alignments.jsonl"
    rows = [json.loads(line) for line in alignments.read_text().splitlines()]
    assert rows and all(r["phones"][0][0] == 0.0 and r["phones"][-1][1] > 0.5 for r in rows)

    v2 = build("v2", alignments=str(alignments))
    manifest = Path(settings.MEDIA_ROOT) / v2.manifest_path
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    # Every public clip of v1 takes the run's alignment (the hidden split never reaches training).
    by_sha = {e["sha256"]: e for e in entries}
    assert v2.facts["alignment"]["supplied"] == len(rows) and all(r["sha256"] in by_sha for r in rows)
    first = by_sha[rows[0]["sha256"]]
    assert first["alignment"][:-1] == [[round(s * 16000), round(t * 16000), p] for s, t, p in rows[0]["phones"]][:-1]
    assert (Path(settings.MEDIA_ROOT) / v2.storage_prefix / Path(first["audio"]).with_suffix(".PHN")).is_file()
    # The hidden clips, which no run saw, are aligned by the platform's latest HMM: the run's, newer than v1's.
    aligner = v2.facts["alignment"]
    assert aligner["initialised_from"] == {"kind": "training_run", "name": str(run.pk)} and "fallback" not in aligner
