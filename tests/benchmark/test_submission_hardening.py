"""Issue #16: nothing about the hidden split reaches a submitter, every byte of an evaluation runs bounded,
evaluations have their own queue and one per account at a time, and no submission stays stuck."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone
from onnx import TensorProto, helper, numpy_helper
from rest_framework.test import APIClient

from benchmark import tasks
from benchmark.leaderboard import services as service
from benchmark.leaderboard.evaluation.checks import SubmissionRejected, check_submission
from benchmark.leaderboard.evaluation.sandbox import (
    Cancelled,
    SandboxLimits,
    budgets,
    evaluation_folder,
    process_ended,
    process_start,
    run_sandboxed,
    sweep_temp_folders,
)
from benchmark.leaderboard.services import (
    EvaluationBusy,
    failure_sentence,
    submission_cancel,
    submission_create,
    submission_evaluate,
    submission_quota_left,
    submissions_reap,
)
from benchmark.models import Submission, SubmissionStatus
from benchmark.releases.selectors import release_hidden_entries
from speech.phones import INVENTORY
from tests.benchmark.conftest import FAST_SANDBOX
from tests.benchmark.test_submission_sandbox import loop_model
from tests.benchmark.test_submissions import good_model
from tests.factories import UserFactory

CLASSES = len(INVENTORY)


@pytest.fixture(autouse=True)
def _fast_sandbox(fast_sandbox, tmp_path, monkeypatch):
    # Evaluation folders go under this test's folder, so that "none left behind" can be checked.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _graph(nodes, inits=(), classes=CLASSES) -> bytes:
    graph = helper.make_graph(
        nodes,
        "submission",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", classes])],
        initializer=list(inits),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def leak_model() -> bytes:
    """log_probs = Unsqueeze(waveform, 2): [1, samples, 1], which once named a hidden utterance and its length."""
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["waveform", "axes"], ["log_probs"])],
        "leak",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, [1, "frames", "classes"])],
        initializer=[axes],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def frames_bomb() -> bytes:
    """LogSoftmax(Unsqueeze(waveform, 2) * row[1, 40]): one frame per sample, 160 times the allowed frames."""
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    row = numpy_helper.from_array(np.ones((1, CLASSES), dtype=np.float32), "row")
    return _graph(
        [
            helper.make_node("Unsqueeze", ["waveform", "axes"], ["column"]),
            helper.make_node("Mul", ["column", "row"], ["logits"]),
            helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
        ],
        [axes, row],
    )


def post(client: APIClient, data: bytes, decoder: str = "greedy"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("model.onnx", data, content_type="application/octet-stream")
    return client.post("/api/v1/submissions/", {"file": upload, "name": "m", "decoder": decoder}, format="multipart")


def hidden_facts(release) -> tuple[list[str], set[int]]:
    """The hidden utterance ids, and every number a length-revealing message could hold about them."""
    entries = release_hidden_entries(release=release)
    numbers: set[int] = set()
    for e in entries:
        samples = len(service._waveform(f"{release.private_prefix}/{e.audio}"))
        numbers |= {samples, math.ceil(samples / 160), samples // 160}
    return [e.utt_id for e in entries], numbers


def assert_reveals_nothing(text: str, ids: list[str], numbers: set[int]) -> None:
    """No hidden id anywhere; no hidden length as a number in any field but the row's own bookkeeping."""
    assert "failure_detail" not in text
    for utt_id in ids:
        assert utt_id not in text
    bookkeeping = {"id", "uuid", "sha256", "size", "created_at", "started_at", "finished_at", "quota_left"}

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in bookkeeping}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    fields = json.dumps(strip(json.loads(text)))
    for number in numbers:
        assert not re.search(rf"(?<![0-9]){number}(?![0-9])", fields), number


# --- 1. nothing about hidden data reaches a submitter --------------------------------------------------------------
def test_the_leak_model_gets_a_fixed_sentence_through_the_api_and_uses_quota(release, client, user, enqueued):
    created = post(client, leak_model())
    assert created.status_code == 201, created.json()
    submission_id = created.json()["id"]

    evaluated = submission_evaluate(submission_id=submission_id)

    assert (evaluated.status, evaluated.failure_code) == (SubmissionStatus.FAILED, "eval_output_shape")
    detail = client.get(f"/api/v1/submissions/{submission_id}")
    mine = client.get("/api/v1/submissions/mine")
    body = detail.json()
    # Refused on the public probes, before any hidden audio: the fixed sentence, then the (public) detail.
    assert body["failure_code"] == "eval_output_shape"
    assert body["failure_message"].startswith(failure_sentence("eval_output_shape"))
    assert "public probe" in body["failure_message"]
    ids, numbers = hidden_facts(release)
    assert_reveals_nothing(detail.content.decode(), ids, numbers)
    assert_reveals_nothing(mine.content.decode(), ids, numbers)
    assert mine.json()["quota_left"] == 2  # a failure costs its place
    assert [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("eval-")] == []  # no test audio left behind


def test_a_failure_on_hidden_audio_says_only_the_fixed_sentence(release, client, user, enqueued, monkeypatch):
    """Even a model that passes the probes and fails on a hidden utterance: operators get the detail, not the
    submitter."""
    monkeypatch.setattr(service, "probe_waveforms", lambda public, release: {})  # the probes pass vacuously
    submission_id = post(client, leak_model()).json()["id"]

    evaluated = submission_evaluate(submission_id=submission_id)

    ids, numbers = hidden_facts(release)
    assert evaluated.failure_code == "eval_output_shape"
    assert evaluated.failure_message == failure_sentence("eval_output_shape")
    assert "output shape [1, " in evaluated.failure_detail  # operators read the utterance and shape in the admin
    response = client.get(f"/api/v1/submissions/{submission_id}")
    assert response.json()["failure_message"] == failure_sentence("eval_output_shape")
    assert_reveals_nothing(response.content.decode(), ids, numbers)
    assert client.get("/api/v1/submissions/mine").json()["quota_left"] == 2


def test_a_failure_that_is_the_platforms_gives_the_place_back(user, enqueued):
    submission = submission_create(user=user, file=good_model(), name="m")
    assert submission_quota_left(user=user) == 2

    evaluated = submission_evaluate(submission_id=submission.pk)  # no release at all

    assert evaluated.failure_code == "release_unavailable"
    assert submission_quota_left(user=user) == 3


def test_the_admin_shows_the_detail(release, user, enqueued, monkeypatch, admin_client):
    monkeypatch.setattr(service, "probe_waveforms", lambda public, release: {})
    submission = submission_create(user=user, file=leak_model(), name="m")
    evaluated = submission_evaluate(submission_id=submission.pk)
    utterance = evaluated.failure_detail.split(":")[0]

    page = admin_client.get(f"/admin/benchmark/submission/{submission.pk}/change/").content.decode()

    assert utterance and utterance in page and "output shape" in page


# --- 2. every byte of a submission's work runs bounded -------------------------------------------------------------
def test_the_frames_bomb_fails_fast_with_eval_output_frames(release, user, enqueued):
    submission = submission_create(user=user, file=frames_bomb(), name="bomb", decoder="hmm_bigram")

    started = time.monotonic()
    evaluated = submission_evaluate(submission_id=submission.pk)
    elapsed = time.monotonic() - started

    assert (evaluated.status, evaluated.failure_code) == (SubmissionStatus.FAILED, "eval_output_frames")
    assert elapsed < 30, elapsed  # seconds, not the 23 minutes of Viterbi it once took in the worker


def test_the_frame_check_runs_in_the_sandbox_before_decoding(tmp_path):
    path = tmp_path / "bomb.onnx"
    path.write_bytes(frames_bomb())
    waves = {"long": np.zeros(16_000 * 20, dtype=np.float32)}

    started = time.monotonic()
    with pytest.raises(SubmissionRejected) as exc:
        run_sandboxed(path, waves, classes=CLASSES, decoder="hmm_bigram", train_transcripts=[[["AA"]]])

    assert exc.value.code == "eval_output_frames"
    assert time.monotonic() - started < 30


def test_a_huge_loop_is_stopped_within_the_duration_scaled_limit(tmp_path):
    path = tmp_path / "loop.onnx"
    path.write_bytes(loop_model())
    check_submission(path)
    waves = {"one-second": np.zeros(16_000, dtype=np.float32)}
    limits = SandboxLimits(rtf_runs=0)  # the production ceilings (900 s CPU, 1200 s wall) stay far away
    cpu, wall = budgets(limits, [1.0], decoding=True)

    started = time.monotonic()
    with pytest.raises(SubmissionRejected) as exc:
        run_sandboxed(path, waves, classes=CLASSES, limits=limits, decoder="greedy")
    elapsed = time.monotonic() - started

    assert exc.value.code == "eval_cpu_time"
    # One second of audio: 3 s + 2 x 1 s of CPU for its inference once loaded, whatever the Loop asks for.
    assert elapsed < 60, elapsed
    assert cpu < limits.cpu_seconds and wall < limits.wall_seconds


def test_budgets_scale_with_the_audio():
    limits = SandboxLimits()
    short_cpu, short_wall = budgets(limits, [1.0] * 10, decoding=True)
    long_cpu, long_wall = budgets(limits, [10.0] * 10, decoding=True)

    assert short_cpu < long_cpu and short_wall < long_wall
    assert budgets(limits, [10_000.0] * 100, decoding=True) == (limits.cpu_seconds, limits.wall_seconds)


def test_decoding_and_metrics_come_from_the_sandbox(release, user, enqueued, monkeypatch):
    """The worker process decodes nothing and loads no model graph itself."""
    import benchmark.leaderboard.evaluation.metrics as metrics
    import speech.decoding as decoding

    def forbidden(*args, **kwargs):
        raise AssertionError("ran in the worker process")

    for module, name in [(decoding, "decode_hmm_bigram"), (decoding, "decode_greedy"), (metrics, "graph_metrics")]:
        monkeypatch.setattr(module, name, forbidden)
    submission = submission_create(user=user, file=good_model(), name="m", decoder="hmm_bigram")

    evaluated = submission_evaluate(submission_id=submission.pk)

    assert evaluated.status == SubmissionStatus.SUCCEEDED, evaluated.failure_detail
    result = evaluated.results.get()
    assert result.per_hidden is not None and result.parameters == 160 * CLASSES + 3 and result.depth == 1


# --- 3. queues, one evaluation per account -------------------------------------------------------------------------
def test_evaluations_have_their_own_queue():
    from config.celery import app

    route = app.amqp.router.route({}, "benchmark.tasks.submission_evaluate")
    assert route["queue"].name == "eval"
    assert app.amqp.router.route({}, "training.tasks.run_execute")["queue"].name == "gpu"
    assert {q.name for q in app.conf.task_queues} >= {"default", "gpu", "eval"}


def test_one_evaluation_per_account_at_a_time(release, user, enqueued, monkeypatch):
    first = submission_create(user=user, file=good_model(), name="a")
    second = submission_create(user=user, file=good_model(), name="b")
    Submission.objects.filter(pk=first.pk).update(status=SubmissionStatus.RUNNING, heartbeat_at=timezone.now())

    with pytest.raises(EvaluationBusy):
        submission_evaluate(submission_id=second.pk)
    later: list = []
    monkeypatch.setattr(tasks.submission_evaluate, "apply_async", lambda *a, **k: later.append((a, k)))
    assert tasks.submission_evaluate(second.pk) == "waiting"
    assert later == [(((second.pk, None),), {"countdown": tasks.BUSY_RETRY_SECONDS})]
    second.refresh_from_db()
    assert second.status == SubmissionStatus.QUEUED

    other = submission_create(user=UserFactory(), file=good_model(), name="c")  # another account is not held up
    assert submission_evaluate(submission_id=other.pk).status == SubmissionStatus.SUCCEEDED


# --- 4. no stuck submission, no stray test audio -------------------------------------------------------------------
def test_a_dead_workers_submission_is_requeued_then_failed_at_a_quota_cost(user, enqueued, settings):
    settings.SUBMISSION_MAX_RECOVERIES = 1
    submission = submission_create(user=user, file=good_model(), name="m")
    silent = timezone.now() - timedelta(seconds=settings.SUBMISSION_HEARTBEAT_STALE_SECONDS + 5)
    Submission.objects.filter(pk=submission.pk).update(
        status=SubmissionStatus.RUNNING, started_at=silent, heartbeat_at=silent, attempts=1
    )
    enqueued.clear()

    assert submissions_reap()["requeued"] == 1
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED

    Submission.objects.filter(pk=submission.pk).update(status=SubmissionStatus.RUNNING, heartbeat_at=silent, attempts=2)
    assert submissions_reap()["failed"] == 1
    submission.refresh_from_db()
    assert (submission.status, submission.failure_code) == (SubmissionStatus.FAILED, "eval_worker_lost")
    assert submission.failure_message == failure_sentence("eval_worker_lost")
    assert submission_quota_left(user=user) == 2  # a worker lost on every try costs the place (issue 16)

    live = submission_create(user=user, file=good_model(), name="live")
    Submission.objects.filter(pk=live.pk).update(status=SubmissionStatus.RUNNING, heartbeat_at=timezone.now())
    assert submissions_reap()["requeued"] == 0  # a fresh heartbeat is left alone


def test_the_reaper_enqueues_after_commit(user, enqueued, settings, django_capture_on_commit_callbacks):
    submission = submission_create(user=user, file=good_model(), name="m")
    silent = timezone.now() - timedelta(hours=1)
    Submission.objects.filter(pk=submission.pk).update(
        status=SubmissionStatus.RUNNING, started_at=silent, heartbeat_at=silent, attempts=1
    )
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        submissions_reap()

    assert enqueued == [(submission.pk, None)]


def test_dead_workers_folders_are_swept_and_live_ones_kept(tmp_path):
    dead = tmp_path / "eval-999999999-abc"
    live = tmp_path / f"eval-{os.getpid()}-def"
    for folder in (dead, live):
        (folder / "inputs").mkdir(parents=True)
        (folder / "inputs" / "hidden.npy").write_bytes(b"audio")

    legacy_old, legacy_new = tmp_path / "eval-k3j2h1g0", tmp_path / "eval-a1b2c3d4"  # folders of the older code
    legacy_old.mkdir()
    legacy_new.mkdir()
    os.utime(legacy_old, (time.time() - 3 * 3600,) * 2)

    assert sweep_temp_folders(tmp_path) == 2
    assert not dead.exists() and live.exists()
    assert not legacy_old.exists() and legacy_new.exists()


def test_a_folder_whose_pid_now_belongs_to_another_process_is_swept(tmp_path):
    """Pids come round again (pid_max is 32,768 here): a killed worker's folder names its pid and that process's
    start time, so a later process given the same pid does not keep the dead one's test audio on disk."""
    me, started = os.getpid(), process_start(os.getpid())
    if not started:
        pytest.skip("no /proc: folders are judged by their pid alone")
    mine = evaluation_folder()
    reused = tmp_path / f"eval-{me}.{int(started) - 1}-abc"  # this pid, an earlier process's start time
    current = tmp_path / f"eval-{me}.{started}-def"
    for folder in (reused, current):
        folder.mkdir()
    try:
        assert Path(mine.name).name.startswith(f"eval-{me}.{started}-")
        assert sweep_temp_folders(tmp_path) == 1
        assert not reused.exists() and current.exists()
    finally:
        mine.cleanup()


def test_a_killed_process_not_yet_reaped_keeps_no_folder(tmp_path):
    """A SIGKILLed worker's orphaned pool child stays a zombie until PID 1 reaps it, and ``kill(pid, 0)`` still
    finds it: its test audio is swept all the same."""
    child = subprocess.Popen(["sleep", "60"])
    started = process_start(child.pid)
    if not started:
        pytest.skip("no /proc: folders are judged by their pid alone")
    folder = tmp_path / f"eval-{child.pid}.{started}-abc"
    folder.mkdir()
    try:
        assert sweep_temp_folders(tmp_path) == 0 and folder.exists()  # it runs
        child.kill()
        deadline = time.monotonic() + 10
        while not process_ended(child.pid) and time.monotonic() < deadline:  # killed, and left unreaped here
            time.sleep(0.05)
        os.kill(child.pid, 0)  # still there for kill(), as a zombie
        assert sweep_temp_folders(tmp_path) == 1 and not folder.exists()
    finally:
        child.kill()
        child.wait()


def test_a_running_submission_can_be_cancelled_and_its_sandbox_is_killed(
    release, user, enqueued, monkeypatch, settings
):
    settings.SUBMISSION_HEARTBEAT_SECONDS = 0.2
    settings.SUBMISSION_SANDBOX = {**FAST_SANDBOX, "utterance_cpu_seconds": 120, "realtime_factor": 0}
    submission = submission_create(user=user, file=loop_model(), name="loop")
    heartbeat = service._heartbeat
    beats: list[bool] = []

    def cancel_on_first_beat(submission_id: int, claim: int) -> bool:
        if not beats:
            assert Submission.objects.get(pk=submission_id).status == SubmissionStatus.RUNNING
            submission_cancel(user=user, submission_id=submission_id)  # the owner, while it runs
        beats.append(heartbeat(submission_id, claim))
        return beats[-1]

    monkeypatch.setattr(service, "_heartbeat", cancel_on_first_beat)
    started = time.monotonic()
    evaluated = submission_evaluate(submission_id=submission.pk)

    assert time.monotonic() - started < 30
    assert evaluated.status == SubmissionStatus.CANCELLED and beats == [False]
    assert submission_quota_left(user=user) == 3
    assert [
        n for n in os.listdir(tempfile.gettempdir()) if n.startswith("eval-")
    ] == []  # the sandbox's folder went with it


def test_a_tick_returning_false_kills_the_child(tmp_path):
    path = tmp_path / "loop.onnx"
    path.write_bytes(loop_model())
    limits = SandboxLimits(utterance_cpu_seconds=120, rtf_runs=0)

    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_sandboxed(
            path,
            {"u": np.zeros(16_000, np.float32)},
            classes=CLASSES,
            limits=limits,
            tick=lambda: False,
            tick_seconds=0.1,
        )

    assert time.monotonic() - started < 10
    assert [p for p in tmp_path.iterdir() if p.name.startswith("eval-")] == []


def test_the_spec_lists_every_failure_code():
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[2] / "docs" / "submission-spec.md").read_text()
    for code in service.FAILURE_SENTENCES:
        assert f"`{code}`" in spec, code
    assert json.dumps(service.FAILURE_SENTENCES)  # plain strings


# --- a real worker, killed mid-evaluation ----------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_a_killed_workers_submission_is_recovered_and_its_test_audio_removed(
    broker, release, enqueued, tmp_path, settings
):
    """The reaper brings the evaluation back on either broker (Redis keeps a dead worker's message for its
    visibility timeout, hours; the embedded broker hands it out again as well, and the first delivery to claim the
    re-queued evaluation runs it, once)."""
    import signal

    from celery import Celery
    from kombu import Connection

    from tests.celery_workers import broker_for, start_worker, stop_workers, wait_until, worker_env

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    broker_url, transport_options = broker_for(broker, tmp_path)
    env = worker_env(broker_url, tmp_path, TMPDIR=str(scratch), SUBMISSION_HEARTBEAT_SECONDS="1")
    user = UserFactory()
    submission = submission_create(user=user, file=loop_model(), name="loop")

    def send() -> None:
        with Connection(broker_url, transport_options=transport_options) as conn:
            Celery(set_as_current=False).send_task(
                "benchmark.tasks.submission_evaluate", args=[submission.pk, None], queue="eval", connection=conn
            )

    def sandbox_folders() -> list[str]:
        return [n for n in os.listdir(scratch) if n.startswith("eval-")]

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    worker = start_worker(env, first_log, "eval", "--pool", "solo")
    try:
        send()
        wait_until(lambda: len(sandbox_folders()) >= 2, 120, worker, first_log)  # the evaluation reached the sandbox
        worker.send_signal(signal.SIGKILL)  # the worker dies mid-evaluation
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.RUNNING and submission.attempts == 1
    assert sandbox_folders()  # the dead worker's test audio is still on disk

    # Its heartbeat went silent with it: a while ago, as if the reaper's staleness limit had passed.
    Submission.objects.filter(pk=submission.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.SUBMISSION_HEARTBEAT_STALE_SECONDS + 1)
    )
    enqueued.clear()
    assert submissions_reap()["requeued"] == 1
    assert enqueued == [(submission.pk, None)]
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED

    # The new worker sweeps the dead worker's folders at start, then evaluates again.
    worker = start_worker(env, second_log, "eval", "--pool", "solo")
    try:
        send()
        wait_until(lambda: Submission.objects.get(pk=submission.pk).is_finished, 180, worker, second_log)
    finally:
        stop_workers(worker)
    output = second_log.read_text()
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED, output[-3000:]
    assert submission.failure_code == "eval_cpu_time" and submission.attempts == 2
    assert sandbox_folders() == [], output[-3000:]
    assert submission_quota_left(user=user) == 2  # the model's own failure costs its place
