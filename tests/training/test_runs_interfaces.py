"""The interfaces over training runs: the API (read by anyone, written by staff), the pages, manage.py train."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory
from training.models import TrainingRun, TrainingRunStatus
from training.services import execution
from training.services.runs import run_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_settings")]


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    return client


@pytest.fixture
def trained(release):
    run = run_create(release="v1", recipe="teacher-dnn")
    assert execution.run_execute(run_id=run.pk) == TrainingRunStatus.SUCCEEDED
    run.refresh_from_db()
    return run


def test_staff_start_a_run_through_the_api_and_anyone_follows_it(
    ready_release_row, staff_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_api.post(
            "/api/v1/training/runs/",
            {"release": "v1", "recipe": "teacher-dnn", "config": {"train.epochs": 3}},
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["config"]["train"]["epochs"] == 3
    assert len(callbacks) == 1  # the task is sent once the row is committed

    listed = APIClient().get("/api/v1/training/runs/")
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["results"]] == [body["id"]]
    detail = APIClient().get(f"/api/v1/training/runs/{body['id']}")
    assert detail.json()["name"] == "teacher-dnn" and detail.json()["percent"] is None


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"release": "v1", "recipe": "wizard"}, 400, "invalid"),
        ({"release": "v9", "recipe": "teacher-dnn"}, 404, "release_unknown"),
        ({"release": "v1", "recipe": "teacher-dnn", "config": {"train.lr": "fast"}}, 400, "run_config_invalid"),
        ({"release": "v1", "recipe": "mimic"}, 400, "run_teacher"),
        ({"release": "v1", "recipe": "mimic", "teacher": 2**63}, 400, "invalid"),  # past bigint: was a 500
        ({"release": "v1", "recipe": "ensemble", "members": [1, 2**64]}, 400, "invalid"),
    ],
)
def test_bad_run_requests_get_a_code_and_no_run(ready_release_row, staff_api, payload, status, code):
    response = staff_api.post("/api/v1/training/runs/", payload, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]
    assert not TrainingRun.objects.exists()


def test_only_staff_start_or_cancel_runs(ready_release_row):
    run = run_create(release="v1", recipe="teacher-dnn")
    anonymous = APIClient().post("/api/v1/training/runs/", {"release": "v1", "recipe": "teacher-dnn"}, format="json")
    assert anonymous.status_code == 401
    member = APIClient()
    member.force_authenticate(UserFactory())
    assert member.post("/api/v1/training/runs/", {"release": "v1", "recipe": "teacher-dnn"}).status_code == 403
    refused = member.post(f"/api/v1/training/runs/{run.pk}/cancel")
    assert refused.status_code == 403 and refused.json()["code"]
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.QUEUED


def test_cancel_through_the_api_then_a_second_cancel_is_a_conflict(ready_release_row, staff_api):
    run = run_create(release="v1", recipe="teacher-dnn")
    assert staff_api.post(f"/api/v1/training/runs/{run.pk}/cancel").json()["status"] == "cancelled"
    again = staff_api.post(f"/api/v1/training/runs/{run.pk}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "run_finished"
    assert staff_api.post("/api/v1/training/runs/9999/cancel").status_code == 404


def test_a_finished_run_serves_its_model_and_its_page_shows_curves_and_results(trained):
    model = APIClient().get(f"/api/v1/training/runs/{trained.pk}/model.onnx")
    assert model.status_code == 200 and b"".join(model.streaming_content)[:2]
    page = Client().get(f"/training/{trained.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "training loss per epoch" in html and "dev frame accuracy per epoch" in html and "<polyline" in html
    assert f"submission {trained.submission_id}" in html and "Download the ONNX model" in html
    listing = Client().get("/training/").content.decode()
    assert f"/training/{trained.pk}/" in listing and "succeeded" in listing


def test_pages_and_model_of_unknown_or_unfinished_runs(release):
    run = run_create(release="v1", recipe="teacher-dnn")
    assert Client().get("/training/9999/").status_code == 404
    missing = APIClient().get(f"/api/v1/training/runs/{run.pk}/model.onnx")
    assert missing.status_code == 404 and missing.json()["code"] == "run_no_model"
    assert Client().get(f"/training/{run.pk}/").status_code == 200


def test_the_run_page_shows_complete_result_rows_and_marks_what_it_patches_live(
    ready_release_row, django_assert_max_num_queries
):
    run = run_create(release="v1", recipe="teacher-dnn")
    metrics = {
        "test": {"per": 0.2288, "frame_acc": 0.61, "sub": 171, "del": 154, "ins": 15, "n": 1486},  # as the pipeline
        "dev": {"per": 0.25, "frame_acc": 0.6},
        "weights": {"lm_weight": 1.0},
    }
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRunStatus.SUCCEEDED, metrics=metrics)
    with django_assert_max_num_queries(8):
        html = Client().get(f"/training/{run.pk}/").content.decode()
    assert "171 / 154 / 15 of 1486" in html and "22.9 %" in html
    for part in ["run-curves", "run-results", "run-outcome", "run-throughput"]:  # what run_live.js patches in place
        assert f'id="{part}" data-live' in html


def test_staff_cancel_from_the_page(ready_release_row):
    run = run_create(release="v1", recipe="teacher-dnn")
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    page = client.get(f"/training/{run.pk}/").content.decode()
    assert "Cancel this run" in page
    client.post(f"/training/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.CANCELLED
    outsider = Client()
    outsider.force_login(UserFactory())
    assert outsider.post(f"/training/{run.pk}/cancel/").status_code == 302  # to the admin login, not a cancel


def test_manage_py_train_trains_here_and_reports(release, capsys):
    call_command("train", release="v1", recipe="teacher-dnn", set=["train.epochs=1"])
    out = capsys.readouterr().out
    run = TrainingRun.objects.get()
    assert run.status == TrainingRunStatus.SUCCEEDED and len(run.history) == 1
    assert "succeeded" in out and "test PER" in out and "leaderboard submission" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"release": "v9", "recipe": "teacher-dnn"}, "no release"),
        ({"release": "v1", "recipe": "teacher-dnn", "set": ["epochs"]}, "KEY=VALUE"),
        ({"release": "v1", "recipe": "teacher-dnn", "set": ["train.nope=1"]}, "not valid"),
        ({"release": "v1", "recipe": "ensemble", "members": "1,x"}, "run ids"),
        ({"release": "v1", "recipe": "teacher-dnn", "config": ["/nonexistent.json"]}, "cannot be read"),
    ],
)
def test_manage_py_train_refuses_bad_input_with_a_sentence(ready_release_row, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("train", **options)
    assert not TrainingRun.objects.exists()


def test_manage_py_train_baselines_queues_the_papers_three_way_comparison_once(
    release, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("train", release="v1", baselines=True, run_async=True)
    teacher, shallow, mimic = TrainingRun.objects.order_by("pk")
    assert (teacher.recipe, shallow.recipe, mimic.recipe) == ("teacher-dnn", "snn-labels", "mimic")
    assert mimic.teacher_id == teacher.pk and len(callbacks) == 2  # the mimic waits for its teacher
    # The comparison is at equal size: the shallow net on labels is the mimic's network.
    assert shallow.config["model"] == mimic.config["model"] and shallow.config["model"]["kind"] == "snn"
    assert str(mimic.pk) in capsys.readouterr().out

    with pytest.raises(CommandError, match=r"already has baseline runs .*cancel them first"):
        call_command("train", release="v1", baselines=True, run_async=True)
    assert TrainingRun.objects.count() == 3


def test_manage_py_train_baselines_trains_here_and_a_failed_set_can_be_started_again(release, capsys):
    run_create(release="v1", recipe="teacher-dnn")  # an operator's own experiment does not count...
    TrainingRun.objects.update(status=TrainingRunStatus.CANCELLED)  # ...once cancelled

    call_command("train", release="v1", baselines=True, set=[])
    out = capsys.readouterr().out
    runs = TrainingRun.objects.exclude(status=TrainingRunStatus.CANCELLED).order_by("pk")
    assert [r.recipe for r in runs] == ["teacher-dnn", "snn-labels", "mimic"]
    assert all(r.status == TrainingRunStatus.SUCCEEDED and r.submission.is_baseline for r in runs)
    assert out.count("test PER") == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"release": "v1"}, "--recipe .* or --baselines"),
        ({"release": "v1", "baselines": True, "recipe": "mimic"}, "fixed recipes"),
        ({"release": "v1", "baselines": True, "base_config": "/nonexistent.json"}, "does not exist"),
        ({"release": "v9", "baselines": True, "run_async": True}, "no release"),
    ],
)
def test_manage_py_train_baselines_refuses_bad_input_with_a_sentence(ready_release_row, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("train", **options)
    assert not TrainingRun.objects.exists()


def test_manage_py_train_cannot_train_a_mimic_here_before_its_teacher(ready_release_row):
    teacher = run_create(release="v1", recipe="teacher-dnn")
    with pytest.raises(CommandError, match="has not finished"):
        call_command("train", release="v1", recipe="mimic", teacher=teacher.pk)
