"""Your data through the pages in a real Chromium: the dashboard's download button saves the zip, and the
account is deleted from its page after the explanation and the password, a wrong one refused first."""

from __future__ import annotations

import json
import zipfile

import pytest
from django.contrib.auth import get_user_model

from contributors.models import Contributor
from contributors.services.clips import clip_submit
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes
from tests.frontend.conftest import screenshot
from tests.frontend.test_browser import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_contributor_downloads_their_data_then_deletes_their_account(live_server, launch, tmp_path):
    me = ContributorFactory(user__username="leaving", user__password=PASSWORD)
    clip = clip_submit(contributor=me, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike())).clip
    page = launch().new_page(accept_downloads=True)
    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("#id_username", "leaving")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/record/")

    page.goto(f"{base}/dashboard/")
    with page.expect_download() as download:
        page.click("#export-button")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == f"my-data-{me.speaker_id}.zip"
    with zipfile.ZipFile(saved) as archive:
        data = json.loads(archive.read("data.json"))
        assert [c["id"] for c in data["clips"]] == [clip.pk]
        assert archive.read(data["clips"][0]["audio"])[:4] == b"fLaC"

    page.click("#delete-link")
    page.wait_for_url(f"{base}/account/delete/")
    assert "Releases already published cannot be changed" in page.inner_text("#deletion-explained")
    page.fill("#id_password", "not my password")
    page.click("#delete-form button[type=submit]")
    assert "not your password" in page.inner_text("#delete-error")
    screenshot(page, "account-delete")
    page.fill("#id_password", PASSWORD)
    page.click("#delete-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "Your account is deleted" in page.inner_text("main")

    assert not get_user_model().objects.filter(username="leaving").exists()
    assert Contributor.objects.get(pk=me.pk).deleted_at is not None
    page.goto(f"{base}/login/")
    page.fill("#id_username", "leaving")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    assert page.url.startswith(f"{base}/login/")
