"""Leaderboard submissions: the upload service and API, the daily quota, and the sandboxed evaluation."""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from onnx import TensorProto, helper
from rest_framework.test import APIClient

from benchmark.leaderboard import services as service
from benchmark.leaderboard.services import (
    submission_cancel,
    submission_create,
    submission_evaluate,
    submissions_reevaluate,
)
from benchmark.models import Submission, SubmissionResult, SubmissionStatus
from benchmark.releases.exports import scored_entries
from benchmark.releases.selectors import release_hidden_entries, release_public_entries
from core.errors import ServiceError
from speech.decoding import decode_greedy
from speech.phones import INVENTORY
from tests.benchmark.conftest import build
from tests.benchmark.test_submission_sandbox import frame_model
from tests.factories import UserFactory

GREEDY_CLASSES = len(INVENTORY)
pytestmark = pytest.mark.usefixtures("fast_sandbox")


def good_model(classes: int = GREEDY_CLASSES) -> bytes:
    return frame_model(classes=classes).SerializeToString()


def nan_model() -> bytes:
    extra = [
        helper.make_node("Abs", ["logits"], ["magnitude"]),
        helper.make_node("Neg", ["magnitude"], ["negative"]),
        helper.make_node("Sqrt", ["negative"], ["not_a_number"]),  # sqrt of a negative: NaN
    ]
    return frame_model(classes=GREEDY_CLASSES, extra_nodes=extra, post="not_a_number").SerializeToString()


def submit(user, data: bytes | None = None, **kwargs) -> Submission:
    return submission_create(user=user, file=data if data is not None else good_model(), name="tiny", **kwargs)


# --- creating -----------------------------------------------------------------------------------------------------
def test_a_submission_is_stored_queued_and_enqueued_after_commit(user, enqueued, django_capture_on_commit_callbacks):
    data = good_model()
    with django_capture_on_commit_callbacks(execute=True):
        submission = submit(user, data, description="A linear layer.", url="https://example.org/paper")

    assert submission.status == SubmissionStatus.QUEUED
    assert submission.file.name == f"submissions/{submission.uuid}.onnx"
    with default_storage.open(submission.file.name, "rb") as handle:
        assert handle.read() == data
    assert submission.size == len(data) and len(submission.sha256) == 64
    assert enqueued == [(submission.pk, None)]


def test_the_daily_quota_counts_live_submissions_only(user, enqueued):
    first, _second, _third = (submit(user) for _ in range(3))

    with pytest.raises(ServiceError) as exc:
        submit(user)
    assert (exc.value.code, exc.value.status_code) == ("quota_exhausted", 429)

    submission_cancel(user=user, submission_id=first.pk)  # a cancelled submission gives its place back
    submit(user)
    assert Submission.objects.filter(submitter=user).count() == 4
    assert submit(UserFactory()).status == SubmissionStatus.QUEUED  # quotas are per user


def test_a_refused_file_leaves_no_row_and_no_file(user, enqueued, settings):
    with pytest.raises(ServiceError) as exc:
        submit(user, b"not a model at all")

    assert exc.value.code == "model_not_onnx"
    assert not Submission.objects.exists()
    assert not default_storage.exists("submissions") or default_storage.listdir("submissions") == ([], [])


def test_a_description_may_span_lines_but_holds_no_control_or_bidi_characters(user, enqueued):
    with pytest.raises(ServiceError) as exc:
        submit(user, description="A tiny model.\nTrained on \u202ev1\u202c.")  # the override flips what it shows
    assert (exc.value.code, exc.value.extra["field"]) == ("text_control_characters", "description")
    assert "U+202E" in exc.value.message and not Submission.objects.exists()
    assert submit(user, description="A tiny model.\r\n\tTrained on v1.").description.endswith("on v1.")


@pytest.mark.django_db(transaction=True)
def test_ten_parallel_submissions_against_a_quota_of_three_accept_exactly_three(enqueued):
    """Each thread on its own connection. PostgreSQL is where this matters; SQLite serialises writers."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is shown against PostgreSQL (CI); SQLite serialises all writers")
    user = UserFactory()
    data = good_model()
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            submit(user, data)
            outcomes.append("ok")
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes.count("ok") == 3
    assert outcomes.count("quota_exhausted") == 7
    assert Submission.objects.filter(submitter=user).count() == 3
    assert len(default_storage.listdir("submissions")[1]) == 3


# --- evaluating ---------------------------------------------------------------------------------------------------
def test_the_greedy_decoder_collapses_repeats_and_drops_silence_and_blank():
    sil, blank = INVENTORY.index("sil"), len(INVENTORY)
    aa, b = INVENTORY.index("AA"), INVENTORY.index("B")
    frames = [aa, aa, sil, aa, blank, b, b, sil]
    log_probs = [[0.0 if c == f else -9.0 for c in range(len(INVENTORY) + 1)] for f in frames]

    assert decode_greedy(log_probs, ctc=True) == ["AA", "AA", "B"]


def test_a_good_model_gets_a_per_with_consistent_counts(release, user, enqueued):
    submission = submit(user)

    evaluated = submission_evaluate(submission_id=submission.pk)

    assert evaluated.status == SubmissionStatus.SUCCEEDED, evaluated.failure_message
    assert evaluated.release == release and evaluated.finished_at is not None
    result = SubmissionResult.objects.get(submission=submission, release=release)
    # Ranked on every scored clip of the hidden split, at the features' 10 ms frame rate; the public test split
    # scored beside it.
    hidden = scored_entries(release_hidden_entries(release=release))
    public = scored_entries(e for e in release_public_entries(release=release) if e.split == "test")
    assert hidden and public
    assert result.utterances == len(hidden)
    assert result.reference_phones == sum(len(phones) for e in hidden for phones in e.phones)
    assert result.frames == pytest.approx(sum(e.num_samples for e in hidden) / 160, abs=2 * len(hidden))
    errors = result.substitutions + result.deletions + result.insertions
    assert result.per_hidden == pytest.approx(errors / result.reference_phones)
    assert result.substitutions + result.deletions <= result.reference_phones
    assert result.public_reference_phones == sum(len(phones) for e in public for phones in e.phones)
    assert 0 < result.per_public < 5  # an untrained model: wrong on most phones, and no more than the frames allow
    assert (result.parameters, result.depth) == (160 * GREEDY_CLASSES + 3, 1)
    assert result.rtf_min <= result.rtf_median <= result.rtf_max
    assert result.isolation in {"none", "network-namespace"}


def test_a_nan_model_fails_with_its_code_recorded_and_a_redelivery_does_nothing(release, user, enqueued):
    submission = submit(user, nan_model())

    evaluated = submission_evaluate(submission_id=submission.pk)

    assert evaluated.status == SubmissionStatus.FAILED
    assert evaluated.failure_code == "eval_output_not_finite" and evaluated.failure_message
    assert not SubmissionResult.objects.exists()
    finished_at = evaluated.finished_at
    assert submission_evaluate(submission_id=submission.pk) is None  # redelivered: already finished
    evaluated.refresh_from_db()
    assert (evaluated.status, evaluated.finished_at) == (SubmissionStatus.FAILED, finished_at)


def test_a_redelivered_task_on_a_finished_submission_does_nothing(release, user, enqueued, monkeypatch):
    submission = submit(user)
    submission_evaluate(submission_id=submission.pk)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished submission was evaluated again")

    monkeypatch.setattr(service, "run_sandboxed", must_not_run)
    assert submission_evaluate(submission_id=submission.pk) is None
    assert SubmissionResult.objects.filter(submission=submission).count() == 1


def test_a_cancelled_submission_is_never_evaluated(release, user, enqueued):
    submission = submit(user)
    submission_cancel(user=user, submission_id=submission.pk)

    assert submission_evaluate(submission_id=submission.pk) is None
    with pytest.raises(ServiceError) as exc:
        submission_cancel(user=user, submission_id=submission.pk)
    assert exc.value.code == "submission_not_cancellable"


def test_without_a_ready_release_the_evaluation_fails_cleanly(user, enqueued):
    submission = submit(user)

    evaluated = submission_evaluate(submission_id=submission.pk)

    assert (evaluated.status, evaluated.failure_code) == (SubmissionStatus.FAILED, "release_unavailable")


def test_a_new_release_re_evaluates_every_succeeded_submission(release, user, enqueued):
    submission = submit(user)
    submission_evaluate(submission_id=submission.pk)
    newer = build("v2")
    enqueued.clear()

    assert submissions_reevaluate(release_id=newer.pk) == 1
    assert enqueued == [(submission.pk, newer.pk)]
    submission_evaluate(submission_id=submission.pk, release_id=newer.pk)

    assert set(SubmissionResult.objects.values_list("release__version", flat=True)) == {"v1", "v2"}
    assert submissions_reevaluate(release_id=newer.pk) == 0  # done once, never again


# --- the API ------------------------------------------------------------------------------------------------------
@pytest.fixture
def client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def post_model(client: APIClient, data: bytes, **fields):
    upload = SimpleUploadedFile("model.onnx", data, content_type="application/octet-stream")
    body = {"file": upload, "name": "tiny", "description": "", "url": "", "decoder": "greedy", **fields}
    return client.post("/api/v1/submissions/", body, format="multipart")


def test_the_api_queues_a_submission_and_shows_it_to_its_owner_only(client, user, enqueued):
    response = post_model(client, good_model(), url="https://example.org/model")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["decoder"] == "greedy" and body["quota_left"] == 2
    assert client.get(f"/api/v1/submissions/{body['id']}").json()["name"] == "tiny"
    assert [s["id"] for s in client.get("/api/v1/submissions/mine").json()["results"]] == [body["id"]]
    stranger = APIClient()
    stranger.force_authenticate(UserFactory())
    assert stranger.get(f"/api/v1/submissions/{body['id']}").status_code == 404
    assert stranger.post(f"/api/v1/submissions/{body['id']}/cancel").status_code == 404

    cancelled = client.post(f"/api/v1/submissions/{body['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    again = client.post(f"/api/v1/submissions/{body['id']}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "submission_not_cancellable")


def test_anonymous_submissions_are_refused():
    assert post_model(APIClient(), good_model()).status_code == 401


def _custom_domain() -> bytes:
    model = frame_model(classes=GREEDY_CLASSES, opsets=(("", 17), ("com.evil", 1)), domain="com.evil")
    return model.SerializeToString()


def _external_data() -> bytes:
    model = frame_model(classes=GREEDY_CLASSES)
    weights = model.graph.initializer[0]
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="../../etc/passwd")
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"GIF89a not a model", "model_not_onnx"),
        (_custom_domain, "model_custom_domain"),
        (_external_data, "model_external_data"),
    ],
)
def test_bad_models_are_400s_with_their_codes(client, enqueued, make, code):
    response = post_model(client, make())

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert response.json()["message"]
    assert not Submission.objects.exists()


def test_a_model_over_the_cap_is_a_413(client, enqueued, settings):
    settings.SUBMISSION_MAX_BYTES = 1000

    response = post_model(client, good_model())

    assert (response.status_code, response.json()["code"]) == (413, "model_too_large")


def test_a_body_far_over_the_submission_cap_is_refused_before_it_is_read(client, settings):
    settings.UPLOAD_MAX_BODY_BYTES_BY_PATH = {"/api/v1/submissions/": 5000}

    response = post_model(client, b"\0" * 10_000)

    assert (response.status_code, response.json()["code"]) == (413, "upload_too_large")


def test_bad_fields_are_400s(client, enqueued):
    assert post_model(client, good_model(), decoder="beam").json()["code"] == "invalid"
    assert post_model(client, good_model(), url="not a url").json()["code"] == "invalid"
    missing = client.post("/api/v1/submissions/", {"name": "x"}, format="multipart")
    assert (missing.status_code, missing.json()["code"]) == (400, "file_missing")


def test_the_fourth_submission_of_the_day_is_a_429(client, enqueued):
    for _ in range(3):
        assert post_model(client, good_model()).status_code == 201

    response = post_model(client, good_model())

    assert (response.status_code, response.json()["code"]) == (429, "quota_exhausted")


# --- the command-line client --------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_the_client_submits_a_model_and_explains_a_refusal(live_server, enqueued, tmp_path, capsys):
    from openphone.submit import main
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=UserFactory()).key
    model = tmp_path / "model.onnx"
    model.write_bytes(good_model())
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"definitely not protobuf")
    common = ["--server", live_server.url, "--token", token]

    assert main(["submit", str(model), "--name", "tiny", "--url", "https://example.org", *common]) == 0
    assert "is queued" in capsys.readouterr().out
    assert Submission.objects.get().name == "tiny"

    assert main(["submit", str(garbage), "--name", "bad", *common]) == 1
    assert "model_not_onnx" in capsys.readouterr().err
    assert main(["submit", str(model), "--name", "tiny", "--server", live_server.url, "--token", ""]) == 1
    assert "No API token" in capsys.readouterr().err
    assert main(["submit", str(tmp_path / "missing.onnx"), "--name", "x", *common]) == 1
    assert main(["submit", str(model), "--name", "x", "--server", "http://127.0.0.1:9", "--token", token]) == 1
    assert "Could not reach" in capsys.readouterr().err


def test_a_release_becoming_ready_enqueues_the_re_evaluation(corpus, task_sends, django_capture_on_commit_callbacks):
    from benchmark import tasks

    sent = task_sends(tasks.submissions_reevaluate)
    with django_capture_on_commit_callbacks(execute=True):
        release = build("v1")

    assert sent == [release.pk]


def test_the_declared_output_classes_must_match_the_decoder(client, enqueued):
    refused = post_model(client, good_model(GREEDY_CLASSES + 1), decoder="greedy")
    assert (refused.status_code, refused.json()["code"]) == (400, "model_output_classes")

    accepted = post_model(client, good_model(GREEDY_CLASSES + 1), decoder="greedy_ctc")
    assert (accepted.status_code, accepted.json()["decoder"]) == (201, "greedy_ctc")


def test_a_ctc_model_is_evaluated_with_41_classes(release, user, enqueued):
    submission = submit(user, good_model(GREEDY_CLASSES + 1), decoder="greedy_ctc")

    evaluated = submission_evaluate(submission_id=submission.pk)

    assert evaluated.status == SubmissionStatus.SUCCEEDED, evaluated.failure_message
    assert SubmissionResult.objects.get(submission=submission).per_hidden is not None
