"""The demo ends with a teacher and its mimic trained on its release, both on the leaderboard with the plot."""

from __future__ import annotations

import pytest
from django.test import Client

from contributors import demo
from tests.training.runs import write_base_config
from training import demo as training_demo
from training.models import TrainingRun, TrainingRunStatus

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not demo.shutil.which("espeak-ng"), reason="needs espeak-ng")]


@pytest.fixture(autouse=True)
def _small(settings, tmp_path, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.TRAINING_DIR = tmp_path / "training"
    settings.TRAINING_PROGRESS_SECONDS = 0
    # The demo's own sizes train in about two minutes; the same recipe at a test's size takes seconds.
    monkeypatch.setattr(training_demo, "DEMO_CONFIG", write_base_config(tmp_path, train={"epochs": 3}))


def test_the_demo_trains_a_teacher_and_its_mimic_onto_the_leaderboard():
    said: list[str] = []
    demo.demo_seed(out=said.append, progress=False, contributors=0, corpus_speakers=10)
    runs = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="here", out=said.append)

    teacher, mimic = (TrainingRun.objects.get(pk=r.pk) for r in runs)
    assert teacher.recipe == "teacher-dnn" and mimic.recipe == "mimic" and mimic.teacher_id == teacher.pk
    assert teacher.status == mimic.status == TrainingRunStatus.SUCCEEDED
    for run in (teacher, mimic):
        assert run.submission.is_baseline and run.submission.decoder == "hmm_bigram"
        assert run.submission.status == "succeeded", run.submission.failure_message

    board = Client().get("/leaderboard/").content.decode()
    assert teacher.submission.name in board and mimic.submission.name in board
    assert board.count("<circle") >= 2 and "PER against parameters" in board
    runs_page = Client().get("/training/").content.decode()
    assert f"/training/{teacher.pk}/" in runs_page and f"/training/{mimic.pk}/" in runs_page

    # Seeding again keeps the runs it finds.
    again = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="here", out=said.append)
    assert [r.pk for r in again] == [teacher.pk, mimic.pk] and "already exist" in said[-1]


def test_queued_demo_training_hands_the_teacher_to_the_worker_and_the_mimic_waits(django_capture_on_commit_callbacks):
    said: list[str] = []
    demo.demo_seed(out=said.append, progress=False, contributors=0, corpus_speakers=4)
    with django_capture_on_commit_callbacks() as callbacks:
        teacher, mimic = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="queue", out=said.append)
    assert len(callbacks) == 1  # only the teacher is sent; the mimic is sent when the teacher succeeds
    assert mimic.teacher_id == teacher.pk and "queued" in said[-1]
