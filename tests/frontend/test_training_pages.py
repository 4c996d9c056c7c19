"""The run page in Chromium: progress updates live while the worker reports, curves appear as epochs finish."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.frontend.conftest import screenshot
from training.models import TrainingRun, TrainingRunStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running_run(tmp_path):
    from tests.training.runs import running_run

    return running_run(tmp_path, step=10, loss=3.2, eta_seconds=95)


def report(run: TrainingRun, **fields) -> None:
    """What the worker's progress callback writes (tests of the worker itself are in tests/training/)."""
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now(), **fields)


def test_the_run_page_follows_a_run_live(live_server, launch, running_run):
    page = launch().new_page()
    page.goto(f"{live_server.url}/training/{running_run.pk}/")
    page.evaluate("window.notReloaded = true")  # gone if the page reloads instead of patching itself
    assert page.locator("#run-epoch").inner_text() == "1 of 2"
    assert page.locator("#run-eta").inner_text() == "95 s"

    progress = {"stage": "train", "event": "step", "epoch": 1, "epochs": 2, "batch": 30, "batches": 40, "step": 30,
                "loss": 2.5, "eta_seconds": 40}  # fmt: skip
    report(running_run, progress=progress)
    page.wait_for_function("() => document.getElementById('run-loss').textContent === '2.5000'", timeout=10_000)
    assert page.locator("#run-percent").inner_text() == "37.5 %"

    history = [{"epoch": 1, "loss": 2.4, "frames_per_s": 9000.0, "dev_frame_acc": 0.41}]
    report(running_run, history=history, progress={**progress, "event": "epoch", "epoch": 1})
    page.wait_for_selector("polyline", state="attached", timeout=10_000)  # an epoch finished: curves patched in
    assert page.evaluate("window.notReloaded") is True

    history.append({"epoch": 2, "loss": 1.9, "frames_per_s": 9100.0, "dev_frame_acc": 0.47})
    report(
        running_run,
        history=history,
        status=TrainingRunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        metrics={"test": {"per": 0.42, "frame_acc": 0.5, "sub": 3, "del": 2, "ins": 1, "n": 14},
                 "dev": {"per": 0.45, "frame_acc": 0.48}, "weights": {"lm_weight": 1.0}},
    )  # fmt: skip
    page.wait_for_selector("text=Results", timeout=10_000)
    assert page.locator("#run-status").inner_text() == "succeeded"
    assert page.locator("figure svg").count() == 2
    assert "3 / 2 / 1 of 14" in page.inner_text("#run-results")  # the result rows are complete
    assert page.locator("#run-status").get_attribute("class") == "status-succeeded"
    assert page.evaluate("window.notReloaded") is True  # followed to the end without a reload
    screenshot(page, "training-run")


def test_researcher_pages_fit_a_phone(live_server, launch, running_run):
    """At 390 px, no page scrolls sideways: wide tables scroll in their own box and plots shrink."""
    from benchmark.models import Submission, SubmissionResult
    from tests.factories import UserFactory

    submission = Submission.objects.create(
        submitter=UserFactory(),
        release=running_run.release,
        name="a-model-with-a-rather-long-name",
        file="submissions/model.onnx",
        sha256="0" * 64,
        size=1,
        status="succeeded",
    )
    SubmissionResult.objects.create(
        submission=submission, release=running_run.release, per_hidden=0.2288, per_public=0.2301, parameters=635_336,
        depth=4, reference_phones=1000, utterances=10, rtf_median=0.01, rtf_min=0.01, rtf_max=0.02,
    )  # fmt: skip
    page = launch().new_page(viewport={"width": 390, "height": 844})
    pages = ["/leaderboard/", "/training/", f"/training/{running_run.pk}/", "/releases/", "/releases/v1/"]
    for path in [*pages, "/releases/v1/datasheet/"]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")  # the datasheet's plots too
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy images load
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
    page.goto(f"{live_server.url}/leaderboard/")
    assert "23.01 %" in page.inner_text("table")  # PER reads as a percentage (this board ranks the public split)
