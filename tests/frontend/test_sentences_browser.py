"""Sentences in a real Chromium: skip and report while recording, propose a sentence, a trustee approves it."""

from __future__ import annotations

import pytest

from contributors.models import Prompt, PromptReport, PromptSkip, ProposalStatus, SentenceProposal
from contributors.services.proposals import PROPOSAL_SOURCE, proposal_review
from tests.factories import ContributorFactory, FounderFactory, PromptFactory
from tests.frontend.conftest import screenshot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-password"
PROPOSED = "The little boat sailed slowly across the quiet lake."


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/record/")


def test_a_reader_skips_and_reports_sentences_proposes_one_and_a_trustee_approves_it(live_server, launch):
    prompts = PromptFactory.create_batch(6)  # a set of five on screen, one spare
    reader = ContributorFactory(user__username="reader", user__password=PASSWORD)
    founders = [FounderFactory(user__username=f"trustee{i}", user__password=PASSWORD) for i in range(2)]
    browser = launch()
    base = live_server.url

    # Skip: the sentence on screen is replaced by the one spare, which was not on screen.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, base, "reader")
    page.wait_for_selector("#recorder[data-state=idle]")
    page.wait_for_selector("#skip-sentence:not([disabled])")
    first = page.inner_text("#prompt-text")
    on_screen = set(page.locator("#prompt-list li").all_inner_texts())
    page.click("#skip-sentence")
    page.wait_for_selector("#recorder[data-sentence-action=skip]")
    replacement = page.inner_text("#prompt-text")
    assert replacement != first and not any(item.startswith(replacement) for item in on_screen)
    assert "Skipped" in page.inner_text("#sentence-status")
    assert PromptSkip.objects.get(contributor=reader).prompt.text == first

    # Report: "Other" needs a note (the server's refusal is shown); with one, the sentence leaves the set.
    page.click("#report-sentence summary")
    page.select_option("#report-sentence-reason", "other")
    page.click("#report-sentence-send")
    page.locator("#sentence-status", has_text="Say what is wrong").wait_for()
    page.fill("#report-sentence-note", "It repeats the same word four times.")
    screenshot(page, "record-report-sentence")
    page.click("#report-sentence-send")
    page.wait_for_selector("#recorder[data-sentence-action=report]")
    assert "no more sentences" in page.inner_text("#sentence-status")
    assert page.locator("#prompt-list li").count() == 4
    report = PromptReport.objects.get()
    assert (report.reporter, report.prompt.text, report.reason) == (reader, replacement, "other")
    assert {p.pk for p in prompts} - {report.prompt_id, PromptSkip.objects.get().prompt_id}

    # Propose: a refused sentence stays in the box with the reason; a good one waits for review.
    page.goto(f"{base}/sentences/")
    page.fill("#id_text", "We left at 8 in the morning.")
    page.click("#propose-form button[type=submit]")
    assert "numbers as words" in page.inner_text("#propose-error")
    assert page.input_value("#id_text") == "We left at 8 in the morning."
    page.fill("#id_text", PROPOSED)
    page.click("#propose-form button[type=submit]")
    page.wait_for_selector("#my-proposals")
    assert "In review" in page.inner_text("#my-proposals") and page.locator("#review-queue").count() == 0

    # Review: a trustee approves it on the page; a second approval makes it a prompt.
    trustee = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(trustee, base, "trustee0")
    trustee.goto(f"{base}/sentences/")
    assert PROPOSED in trustee.inner_text("#review-queue")
    screenshot(trustee, "sentences-review")
    trustee.click("#review-queue button[value=yes]")
    trustee.wait_for_selector("#review-empty")
    assert "Approved" in trustee.inner_text(".messages")
    proposal = SentenceProposal.objects.get()
    assert proposal.status == ProposalStatus.OPEN and proposal.reviews.get().reviewer == founders[0]
    proposal_review(reviewer=founders[1], proposal_id=proposal.pk, approve=True)
    assert Prompt.objects.get(source=PROPOSAL_SOURCE).text == PROPOSED
