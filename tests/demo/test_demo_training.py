"""The demo ends with the paper's three-way comparison trained on its release (a teacher, the shallow net of its
size on the labels, that net as the teacher's mimic), all on the leaderboard with the plot."""

from __future__ import annotations

import pytest
from django.test import Client

from demo import seed as demo
from demo import training as training_demo
from tests.benchmark.conftest import make_corpus
from tests.training.runs import write_base_config
from training.models import TrainingRun, TrainingRunStatus

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not demo.shutil.which("espeak-ng"), reason="needs espeak-ng")]


@pytest.fixture(autouse=True)
def _small(settings, tmp_path, monkeypatch):
    settings.TRAINING_DIR = tmp_path / "training"
    settings.TRAINING_PROGRESS_SECONDS = 0
    # The demo's own sizes train in about two minutes; the same recipe at a test's size takes seconds.
    monkeypatch.setattr(training_demo, "DEMO_CONFIG", write_base_config(tmp_path, train={"epochs": 2}))


def test_the_demo_trains_a_teacher_and_its_mimic_onto_the_leaderboard():
    said: list[str] = []
    # The demo's release, built as the demo builds it, from a small corpus of valid clips: seeding the demo itself
    # (its espeak-ng recordings and votes, tests/demo/test_demo.py) would add 40 CPU-seconds here.
    make_corpus()
    demo._seed_release(out=said.append)
    runs = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="here", out=said.append)

    teacher, shallow, mimic = (TrainingRun.objects.get(pk=r.pk) for r in runs)
    assert (teacher.recipe, shallow.recipe, mimic.recipe) == ("teacher-dnn", "snn-labels", "mimic")
    assert mimic.teacher_id == teacher.pk
    assert teacher.status == shallow.status == mimic.status == TrainingRunStatus.SUCCEEDED
    # The paper's comparison is at equal size: the shallow net on labels is the mimic's network.
    assert shallow.parameters == mimic.parameters and shallow.config["model"] == mimic.config["model"]
    for run in (teacher, shallow, mimic):
        assert run.submission.is_baseline and run.submission.decoder == "hmm_bigram"
        assert run.submission.status == "succeeded", run.submission.failure_message

    board = Client().get("/leaderboard/").content.decode()
    assert all(run.submission.name in board for run in (teacher, shallow, mimic))
    assert board.count("<circle") >= 3 and "PER against parameters" in board
    runs_page = Client().get("/training/").content.decode()
    assert all(f"/training/{run.pk}/" in runs_page for run in (teacher, shallow, mimic))
    # One number per model, or the difference labelled: each run shows the board's own PER and parameter count
    # beside its own evaluation, and says why they differ.
    for run in (teacher, shallow, mimic):
        result = run.submission.results.get(release=run.release)
        ranked = result.per_hidden if result.per_hidden is not None else result.per_public
        assert f"PER {round(100 * ranked)} %</a> · {result.parameters} parameters" in runs_page
        detail = Client().get(f"/training/{run.pk}/").content.decode()
        assert f"{100 * result.per_public:.1f} % on the public test split, {result.parameters} parameters" in detail
        assert "differ from the table above on purpose" in detail

    # Seeding again keeps the runs it finds.
    again = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="here", out=said.append)
    assert [r.pk for r in again] == [teacher.pk, shallow.pk, mimic.pk] and "already exist" in said[-1]


def test_queued_demo_training_hands_the_teacher_and_shallow_net_to_the_worker_and_the_mimic_waits(
    django_capture_on_commit_callbacks,
):
    from benchmark.models import Release, ReleaseStatus

    said: list[str] = []
    # Queueing reads no file of the release: its ready row is enough (seeding the demo to build it took 30 s).
    Release.objects.create(version=demo.DEMO_RELEASE, status=ReleaseStatus.READY)
    with django_capture_on_commit_callbacks() as callbacks:
        teacher, shallow, mimic = training_demo.demo_training(version=demo.DEMO_RELEASE, mode="queue", out=said.append)
    # The teacher and the shallow net on labels are sent; the mimic is sent when the teacher succeeds.
    assert len(callbacks) == 2
    assert shallow.recipe == "snn-labels" and mimic.teacher_id == teacher.pk and "queued" in said[-1]
