"""The leaderboard: JSON and CSV exports, sorting, the page with its plot, and a submission's way onto it."""

from __future__ import annotations

import csv
import io

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from benchmark.leaderboard.services import submission_create
from benchmark.models import Release, ReleaseStatus, Submission, SubmissionResult, SubmissionStatus
from benchmark.tasks import submission_evaluate as evaluation_task
from tests.benchmark.conftest import FAST_SANDBOX
from tests.benchmark.test_submissions import good_model
from tests.factories import UserFactory


def ready_release(version: str) -> Release:
    return Release.objects.create(version=version, status=ReleaseStatus.READY, finished_at=timezone.now())


def scored(release: Release, name: str, *, per: float, parameters: int, depth: int, baseline: bool = False):
    submission = Submission.objects.create(
        submitter=UserFactory(),
        release=release,
        name=name,
        file=f"submissions/{name}.onnx",
        sha256="0" * 64,
        size=1,
        status=SubmissionStatus.SUCCEEDED,
        is_baseline=baseline,
    )
    return SubmissionResult.objects.create(
        submission=submission,
        release=release,
        per_hidden=per,
        reference_phones=100,
        substitutions=int(per * 60),
        deletions=int(per * 30),
        insertions=int(per * 10),
        per_public=per + 0.01,
        parameters=parameters,
        depth=depth,
        macs_per_second=parameters * 100,
        rtf_median=0.01,
        rtf_min=0.009,
        rtf_max=0.012,
    )


@pytest.fixture
def board(db):
    old, new = ready_release("v1"), ready_release("v2")
    scored(old, "old-only", per=0.1, parameters=10, depth=1)
    scored(new, "deep", per=0.25, parameters=5_000_000, depth=5)
    scored(new, "shallow", per=0.40, parameters=200_000, depth=1, baseline=True)
    scored(new, "middle", per=0.30, parameters=1_000_000, depth=2)
    return new


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


def test_the_json_board_is_public_sorted_and_for_the_latest_release(board, django_assert_max_num_queries):
    client = APIClient()
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/leaderboard/")

    assert response.status_code == 200
    assert response.json()["release"] == "v2"
    assert names(response) == ["deep", "middle", "shallow"]
    first = response.json()["results"][0]
    assert (first["rank"], first["substitutions"], first["reference_phones"], first["depth"]) == (1, 15, 100, 5)
    assert names(client.get("/api/v1/leaderboard/?sort=-parameters")) == ["deep", "middle", "shallow"]
    assert names(client.get("/api/v1/leaderboard/?sort=parameters")) == ["shallow", "middle", "deep"]
    assert names(client.get("/api/v1/leaderboard/?release=v1")) == ["old-only"]
    assert [r["is_baseline"] for r in client.get("/api/v1/leaderboard/").json()["results"]] == [False, False, True]


def test_bad_board_queries_are_4xx_with_codes(board):
    client = APIClient()

    assert client.get("/api/v1/leaderboard/?sort=password").json()["code"] == "sort_unknown"
    missing = client.get("/api/v1/leaderboard/?release=v9")
    assert (missing.status_code, missing.json()["code"]) == (404, "release_unknown")


def test_the_csv_export_has_a_header_and_one_row_per_result(board):
    response = APIClient().get("/api/v1/leaderboard.csv?sort=-per_hidden")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["name"] for r in rows] == ["shallow", "middle", "deep"]
    assert rows[0]["is_baseline"] == "True" and rows[0]["release"] == "v2"


def test_the_page_shows_the_table_the_plot_and_the_export_links(board, client):
    response = client.get("/leaderboard/?sort=-per_hidden")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("shallow") < html.index("middle") < html.index("deep")
    assert "baseline" in html and 'href="/api/v1/leaderboard.csv?release=v2&amp;sort=-per_hidden"' in html
    assert html.count("<circle") >= 3 + 3  # three points and a legend entry per depth (1, 2, 5)
    assert 'role="img"' in html and "depth 5" in html
    assert 'href="/leaderboard/"' in html  # the site's navigation links here
    assert client.get("/leaderboard/?sort=nonsense").status_code == 200  # falls back to the default
    assert client.get("/leaderboard/?release=v9").status_code == 404


def test_the_plot_scales_and_numbers_its_points_with_a_key_beside_it(board, client):
    import re

    html = client.get("/leaderboard/?sort=-per_hidden").content.decode()
    svg = re.search(r'<svg class="leaderboard-plot"[^>]*>', html).group(0)
    assert "viewBox=" in svg and "width=" not in svg and "height=" not in svg  # sized by its container
    key = html[html.index('<ol class="plot-key"') :]
    key = key[: key.index("</ol>")]
    # each point is numbered as its table row, and the key lists it by name with its PER as a percentage
    for rank, name in enumerate(["shallow", "middle", "deep"], 1):
        assert re.search(rf'<li value="{rank}">.*?{name}.*?: PER \d+\.\d %', key)
        assert re.search(rf'aria-hidden="true">{rank}</text>', html)


def test_an_empty_board_renders(db, client):
    assert "No evaluated submission" in client.get("/leaderboard/").content.decode()
    body = APIClient().get("/api/v1/leaderboard/").json()
    assert (body["release"], body["results"]) == (None, [])
    assert set(body["decoders"]) == {"greedy", "greedy_ctc", "hmm_bigram"}


def test_an_evaluated_submission_reaches_the_board(release, settings, enqueued, django_capture_on_commit_callbacks):
    settings.SUBMISSION_SANDBOX = FAST_SANDBOX
    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_create(user=UserFactory(), file=good_model(), name="tiny linear")
    (message,) = enqueued
    assert evaluation_task(*message) == SubmissionStatus.SUCCEEDED  # the worker, on the message the upload sent

    rows = APIClient().get("/api/v1/leaderboard/").json()["results"]

    assert [(r["name"], r["release"]) for r in rows] == [("tiny linear", release.version)]
    # The board shows the evaluation's own score (an untrained model is far from perfect).
    stored = submission.results.get(release=release)
    assert rows[0]["per_hidden"] == pytest.approx(stored.per_hidden) and stored.per_hidden > 0.5
