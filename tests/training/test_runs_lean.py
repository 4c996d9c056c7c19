"""The run list is lean: a page of summaries (no log, config, history or error), in a fixed number of queries
however many runs there are; logs and failures' exceptions are for staff; the run API is throttled."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from benchmark.models import Release, ReleaseStatus
from tests.factories import UserFactory
from training.models import TrainingRun, TrainingRunStatus

pytestmark = pytest.mark.django_db

LOG = "epoch 1 on worker-host-7:4242\n" * 4000  # ~100,000 characters, as a long run's log
TRACEBACK = "RuntimeError: CUDA out of memory at /srv/openphone/training/ml/train.py:88"


def _runs(n: int) -> list[TrainingRun]:
    release = Release.objects.get_or_create(version="v1", defaults={"status": ReleaseStatus.READY})[0]
    runs = [
        TrainingRun.objects.create(
            release=release,
            recipe="teacher-dnn",
            status=TrainingRunStatus.FAILED,
            log=LOG,
            error=TRACEBACK,
            error_code="training_error",
            hardware={"name": "worker-host-7"},
            history=[{"epoch": 1, "loss": 1.0}],
            config={"train": {"epochs": 3}},
        )
        for _ in range(n)
    ]
    for run in runs[1:]:
        run.members.add(runs[0])
    return runs


def test_the_list_is_a_page_of_summaries_without_logs(django_assert_num_queries):
    _runs(3)
    with django_assert_num_queries(4):  # the throttle's count, the page's count, the page, its members
        response = APIClient().get("/api/v1/training/runs/")
    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3 and body["next"] is None and len(body["results"]) == 3
    for row in body["results"]:
        assert not {"log_tail", "log", "config", "history", "hardware", "error", "metrics"} & set(row)
        assert row["error_code"] == "training_error"
    assert "worker-host-7" not in response.content.decode() and "CUDA" not in response.content.decode()
    assert len(response.content) < 5_000


def test_the_list_costs_the_same_queries_for_many_runs(django_assert_num_queries):
    _runs(60)
    with django_assert_num_queries(4):
        body = APIClient().get("/api/v1/training/runs/", {"page_size": 20, "page": 2}).json()
    assert body["count"] == 60 and len(body["results"]) == 20 and body["next"] and body["previous"]
    assert APIClient().get("/api/v1/training/runs/", {"page": 99}).status_code == 404


def test_logs_and_exceptions_are_for_staff_only():
    (run,) = _runs(1)
    public = APIClient().get(f"/api/v1/training/runs/{run.pk}").json()
    assert public["log_tail"] is None and public["error"] is None
    assert public["error_code"] == "training_error" and public["history"]  # the page's curves still work
    staff = APIClient()
    staff.force_authenticate(UserFactory(is_staff=True))
    detail = staff.get(f"/api/v1/training/runs/{run.pk}").json()
    assert detail["log_tail"] == LOG[-4000:] and detail["error"] == TRACEBACK

    page = Client().get(f"/training/{run.pk}/").content.decode()
    assert "training_error" in page and "CUDA" not in page and "worker-host-7:4242" not in page
    staff_page = Client()
    staff_page.force_login(UserFactory(is_staff=True, username="operator"))
    html = staff_page.get(f"/training/{run.pk}/").content.decode()
    assert "CUDA" in html and "worker-host-7:4242" in html


def test_the_runs_page_costs_the_same_queries_for_many_runs(django_assert_max_num_queries):
    _runs(3)
    with django_assert_max_num_queries(3):  # the runs with releases and submissions, their board results
        assert Client().get("/training/").status_code == 200
    _runs(30)
    with django_assert_max_num_queries(3):
        page = Client().get("/training/")
    assert page.status_code == 200 and "worker-host-7" not in page.content.decode()


def test_the_run_api_is_throttled_and_recovers(monkeypatch):
    (run,) = _runs(1)
    now = [1_000_000.0]
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"runs": "3/min"})
    monkeypatch.setattr(ScopedRateThrottle, "timer", staticmethod(lambda: now[0]))
    anon = APIClient()
    codes = [anon.get(url).status_code for url in ["/api/v1/training/runs/", f"/api/v1/training/runs/{run.pk}"] * 2]
    assert codes == [200, 200, 200, 429]
    now[0] += 60
    assert anon.get("/api/v1/training/runs/").status_code == 200
