"""The site's pages in Chromium under their Content-Security-Policy and Permissions-Policy: no violation is
reported on any of them, and each still does its job (the recorder records and plays back through the fake
microphone, the validator plays a clip, the run page polls, the API docs render, the admin edits)."""

from __future__ import annotations

import time

import pytest
import soundfile as sf
from django.utils import timezone

from contributors.services.clips import clip_submit
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes
from training.models import TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-password"
# Registered before any page script runs (Playwright injects it outside the page's CSP).
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""


@pytest.fixture
def site(tmp_path):
    from tests.training.runs import running_run

    run = running_run(tmp_path)
    founder = FounderFactory(user__username="keeper", user__password=PASSWORD, user__is_staff=True,
                             user__is_superuser=True)  # fmt: skip
    # The founder's own clip earns votes; someone else's is there to validate.
    clip_submit(contributor=founder, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=8)))
    clip_submit(contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=9)))
    return {"founder": founder, "run": run}


def test_the_pages_work_under_their_policies_with_no_violation(live_server, launch, site, tmp_path):
    mic = tmp_path / "microphone.wav"
    sf.write(mic, speechlike(seconds=2.5, rate=48_000), 48_000, subtype="PCM_16")
    browser = launch(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}%noloop",
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(WATCH_VIOLATIONS)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    base = live_server.url
    visited: dict[str, list[str]] = {}

    def settle(path: str) -> None:
        # "load", then a moment for the page's scripts: "networkidle" never comes on a busy machine while the live
        # panels poll (the progress panel, a run's page).
        page.wait_for_load_state("load")
        page.wait_for_timeout(500)
        visited[path] = page.evaluate("window.__violations")

    page.goto(f"{base}/login/")
    page.fill("#id_username", "keeper")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/record/")

    # The record page: the microphone opens (Permissions-Policy allows it here), the worklet loads, a take
    # plays back from a blob: URL.
    page.wait_for_selector("#recorder[data-state=idle]")
    page.click("#record-button")
    page.wait_for_selector("#recorder[data-state=recording]", timeout=10_000)
    time.sleep(1.8)
    page.click("#record-button")
    page.wait_for_selector("#recorder[data-state=recorded]", timeout=10_000)
    page.click("#play-button")
    page.wait_for_selector("#recorder[data-played=true]", timeout=15_000)
    assert page.evaluate("document.featurePolicy.allowsFeature('microphone')") is True
    settle("/record/")

    page.goto(f"{base}/validate/")
    page.wait_for_selector("#validator[data-state=ready]", timeout=10_000)
    page.keyboard.press(" ")
    page.wait_for_selector("#validator[data-state=listened]", timeout=20_000)
    assert page.evaluate("document.featurePolicy.allowsFeature('microphone')") is False  # only where recording
    settle("/validate/")

    pages = ["/", "/dashboard/", "/profile/", "/leaderboard/", "/releases/", "/releases/v1/", "/training/"]
    for path in [*pages, "/releases/v1/datasheet/"]:
        page.goto(f"{base}{path}")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # lazy images (the datasheet's plots)
        settle(path)
    assert page.goto(f"{base}/releases/v1/").ok

    # The run page polls the API and updates in place.
    page.goto(f"{base}/training/{site['run'].pk}/")
    TrainingRun.objects.filter(pk=site["run"].pk).update(
        heartbeat_at=timezone.now(),
        progress={"stage": "train", "event": "step", "epoch": 1, "epochs": 2, "batch": 30, "batches": 40,
                  "loss": 2.5, "eta_seconds": 40},
    )  # fmt: skip
    page.wait_for_function("() => document.getElementById('run-loss').textContent === '2.5000'", timeout=10_000)
    settle("/training/<run>/")

    # The API docs: Swagger UI renders the schema from its start-up script file.
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    page.wait_for_selector(".opblock-tag", timeout=20_000)
    settle("/api/docs/")

    # The admin: its index, a change list and a change form (with its inline-free scripts) under the policy.
    founder_page = f"/admin/contributors/contributor/{site['founder'].pk}/change/"
    user_page = f"/admin/auth/user/{site['founder'].user_id}/change/"  # date and time widgets, filter boxes
    for path in ["/admin/", "/admin/contributors/clip/", founder_page, user_page, "/admin/benchmark/release/"]:
        response = page.goto(f"{base}{path}")
        assert response.ok, path
        settle(path)
    page.goto(f"{base}{user_page}")
    page.fill("#id_last_login_0", "")
    page.click(".field-last_login .datetimeshortcuts >> text=Today")  # the admin's own scripts run under the CSP
    assert page.input_value("#id_last_login_0") != ""
    settle(user_page)

    violations = {path: found for path, found in visited.items() if found}
    policy_messages = [m for m in console if any(w in m.lower() for w in ("content security", "permissions"))]
    assert violations == {} and policy_messages == [], (violations, policy_messages)
    assert not [m for m in console if m.startswith("pageerror")], console
