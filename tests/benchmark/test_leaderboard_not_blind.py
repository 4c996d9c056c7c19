"""Issue #16: a release without a hidden split (too few platform speakers) takes submissions, ranks them on its
public test split without the shared prompts, and says "not blind" wherever its board is shown."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from benchmark.leaderboard.services import submission_evaluate
from benchmark.models import Release, ReleaseStatus, Submission, SubmissionResult, SubmissionStatus
from benchmark.releases.exports import scored_entries
from benchmark.releases.selectors import release_public_entries
from contributors.models import Prompt, Provenance
from tests.benchmark.conftest import FAST_SANDBOX, SENTENCES, build, make_corpus
from tests.benchmark.test_submission_hardening import post
from tests.benchmark.test_submissions import good_model
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
NOT_BLIND = {"hidden_split": {"formed": False, "blind": False, "min_speakers": 5, "leaderboard_split": "test"}}


@pytest.fixture(autouse=True)
def _fast_sandbox(settings):
    settings.SUBMISSION_SANDBOX = FAST_SANDBOX


def ready_release(version: str, facts: dict) -> Release:
    return Release.objects.create(version=version, status=ReleaseStatus.READY, finished_at=timezone.now(), facts=facts)


def scored_on_public(release: Release, name: str, per_public: float) -> SubmissionResult:
    submission = Submission.objects.create(
        submitter=UserFactory(), release=release, name=name, file=f"submissions/{name}.onnx", sha256="0" * 64,
        size=1, status=SubmissionStatus.SUCCEEDED,
    )  # fmt: skip
    return SubmissionResult.objects.create(
        submission=submission, release=release, per_hidden=None, per_public=per_public, reference_phones=100,
        substitutions=int(per_public * 100), parameters=1000, depth=1, rtf_median=0.01, rtf_min=0.01, rtf_max=0.01,
    )  # fmt: skip


def test_a_submission_to_a_release_without_a_hidden_split_is_scored_on_public_test_and_marked_not_blind():
    make_corpus(speakers=14, clips_each=5, provenance=Provenance.IMPORTED)  # imported: nobody may be hidden
    Prompt.objects.filter(text=SENTENCES[0]).update(prompt_type="shared")  # read by every speaker
    release = build("v1")
    assert release.facts["hidden_split"]["blind"] is False
    client = APIClient()
    client.force_authenticate(UserFactory())

    created = post(client, good_model())
    assert created.status_code == 201, created.json()
    evaluated = submission_evaluate(submission_id=created.json()["id"])

    assert evaluated.status == SubmissionStatus.SUCCEEDED, evaluated.failure_detail
    public = [e for e in release_public_entries(release=release) if e.split == "test"]
    scored = scored_entries(public)
    assert len(scored) < len(public)  # the shared prompt's test clips are left out
    result = client.get(f"/api/v1/submissions/{evaluated.pk}").json()["results"][0]
    assert (result["blind"], result["per_hidden"]) == (False, None)
    stored = evaluated.results.get()
    assert result["per_public"] == pytest.approx(stored.per_public) and stored.per_public > 0  # untrained: wrong
    assert stored.utterances == len(scored)
    assert stored.reference_phones == sum(len(p) for e in scored for p in e.phones)

    board = APIClient().get("/api/v1/leaderboard/").json()
    assert (board["blind"], board["scored_on"], board["sort"]) == (False, "test", "per_public")
    assert board["note"].startswith("Not blind:") and "public test split" in board["note"]
    row = board["results"][0]
    assert (row["rank"], row["name"], row["blind"], row["scored_on"]) == (1, "m", False, "test")
    assert (row["per_hidden"], row["per_public"]) == (None, result["per_public"])
    assert row["reference_phones"] == stored.reference_phones

    exported = APIClient().get("/api/v1/leaderboard.csv")
    assert 'filename="leaderboard-v1-not-blind.csv"' in exported["Content-Disposition"]
    line = next(csv.DictReader(io.StringIO(exported.content.decode())))
    assert (line["blind"], line["scored_on"], line["per_hidden"]) == ("False", "test", "")

    page = Client().get("/leaderboard/").content.decode()
    assert 'id="not-blind"' in page and "<strong>Not blind:</strong>" in page
    assert "public test split (not blind)" in page and "PER (hidden)" not in page


def test_a_board_that_is_not_blind_ranks_on_public_test_by_default():
    release = ready_release("v1", NOT_BLIND)
    scored_on_public(release, "worse", 0.5)
    scored_on_public(release, "better", 0.2)
    client = APIClient()

    body = client.get("/api/v1/leaderboard/").json()

    assert [(r["rank"], r["name"]) for r in body["results"]] == [(1, "better"), (2, "worse")]
    assert body["blind"] is False and all(r["blind"] is False for r in body["results"])
    assert [r["name"] for r in client.get("/api/v1/leaderboard/?sort=-per_public").json()["results"]] == [
        "worse",
        "better",
    ]
    bad = client.get("/api/v1/leaderboard/?sort=password")
    assert (bad.status_code, set(bad.json()) >= {"code", "message"}) == (400, True)
    assert bad.json()["code"] == "sort_unknown"
    page = Client().get("/leaderboard/").content.decode()
    assert page.index("better") < page.index("worse") and "<circle" in page  # plotted on the public PER


def test_a_blind_board_says_so_and_has_no_not_blind_notice():
    release = ready_release("v1", {"hidden_split": {"formed": True, "blind": True, "leaderboard_split": "hidden"}})
    scored_on_public(release, "m", 0.3)

    body = APIClient().get("/api/v1/leaderboard/").json()

    assert (body["blind"], body["scored_on"], body["sort"]) == (True, "hidden", "per_hidden")
    assert body["note"].startswith("Blind:") and body["results"][0]["blind"] is True
    exported = APIClient().get("/api/v1/leaderboard.csv")
    assert 'filename="leaderboard-v1.csv"' in exported["Content-Disposition"]
    assert next(csv.DictReader(io.StringIO(exported.content.decode())))["blind"] == "True"
    page = Client().get("/leaderboard/").content.decode()
    assert 'id="not-blind"' not in page and "PER (hidden)" in page
