"""Sentences: skip and report a prompt while recording, propose sentences, trustees review them."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from contributors.admin import PromptReportAdmin
from contributors.models import Clip, Prompt, PromptReport, PromptSkip, ProposalStatus, SentenceProposal
from contributors.services.clips import clip_submit
from contributors.services.prompt_reports import prompt_report
from contributors.services.prompts import prompt_create
from contributors.services.proposals import PROPOSAL_SOURCE, sentence_propose
from core.errors import ServiceError
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


def client_for(contributor) -> APIClient:
    client = APIClient()
    client.force_authenticate(contributor.user)
    return client


def served_to(contributor, count: int = 50) -> set[int]:
    response = client_for(contributor).get(f"/api/v1/prompts/next?count={count}")
    assert response.status_code == 200
    return {p["id"] for p in response.json()}


# --- skip and report -------------------------------------------------------------------------------------------


def test_a_skipped_prompt_is_replaced_by_one_not_on_screen_and_never_served_to_that_reader_again(api, contributor):
    skipped, on_screen, spare = PromptFactory(), PromptFactory(), PromptFactory()
    response = api.post(f"/api/v1/prompts/{skipped.pk}/skip", {"on_screen": [skipped.pk, on_screen.pk]}, format="json")
    assert response.status_code == 200
    assert response.json()["next"]["id"] == spare.pk
    assert served_to(contributor) == {on_screen.pk, spare.pk}
    assert skipped.pk in served_to(ContributorFactory())  # a skip is personal
    # Nothing left to replace it with: null, not an error.
    response = api.post(f"/api/v1/prompts/{spare.pk}/skip", {"on_screen": [on_screen.pk]}, format="json")
    assert response.status_code == 200 and response.json()["next"] is None


def test_a_skip_with_an_on_screen_id_past_bigint_is_refused_and_not_saved(api, prompt):
    response = api.post(f"/api/v1/prompts/{prompt.pk}/skip", {"on_screen": [2**63]}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "on_screen_invalid"
    assert not PromptSkip.objects.exists()


@pytest.mark.parametrize("prompt_id", ["0", "1e3", "\u0661", "99999", "-1", "1%20"])
def test_skipping_an_unknown_or_misspelt_prompt_id_is_404(api, prompt_id):
    PromptFactory()
    response = api.post(f"/api/v1/prompts/{prompt_id}/skip", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "prompt_unknown"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"reason": "boring"}, "reason_invalid"),
        ({}, "reason_invalid"),
        ({"reason": "other"}, "note_required"),
        ({"reason": "other", "note": "bad\u202eword"}, "note_invalid"),
        ({"reason": "other", "note": "x" * 501}, "note_too_long"),
        ({"reason": "other", "note": ["a", "list"]}, "note_invalid"),
        ({"reason": "offensive", "on_screen": ["x"]}, "on_screen_invalid"),
        ({"reason": "offensive", "on_screen": list(range(1, 60))}, "on_screen_invalid"),
        ({"reason": "offensive", "on_screen": [2**63]}, "on_screen_invalid"),  # past bigint: a 500 once saved
        ({"reason": "offensive", "on_screen": ["9223372036854775808"]}, "on_screen_invalid"),
    ],
)
def test_a_report_without_a_proper_reason_is_refused_with_its_code(api, prompt, body, code):
    response = api.post(f"/api/v1/prompts/{prompt.pk}/report", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not PromptReport.objects.exists()


def test_reports_from_three_readers_hold_a_prompt_until_an_operator_dismisses_or_retires_it(settings):
    settings.SENTENCES = {"REPORTS_TO_HOLD": 3}
    prompt, other = PromptFactory(), PromptFactory()
    readers = ContributorFactory.create_batch(3)
    bystander = ContributorFactory()

    first = client_for(readers[0]).post(
        f"/api/v1/prompts/{prompt.pk}/report", {"reason": "misspelt", "on_screen": [prompt.pk]}, format="json"
    )
    assert first.status_code == 201 and first.json()["next"]["id"] == other.pk
    again = client_for(readers[0]).post(f"/api/v1/prompts/{prompt.pk}/report", {"reason": "other", "note": "still"})
    assert again.status_code == 409 and again.json()["code"] == "report_duplicate"
    assert prompt.pk not in served_to(readers[0])  # not offered to the reporter again...
    prompt_report(reporter=readers[1], prompt_id=prompt.pk, reason="hard_to_read")
    assert prompt.pk in served_to(bystander)  # ...but to others, below the threshold
    prompt_report(reporter=readers[2], prompt_id=prompt.pk, reason="other", note="Reads like a tongue twister.")
    prompt.refresh_from_db()
    assert prompt.held_for_review
    assert served_to(bystander) == {other.pk}
    # A reader who had it on screen before it was held cannot file a reading of it meanwhile.
    with pytest.raises(ServiceError) as refused:
        clip_submit(contributor=bystander, prompt_id=prompt.pk, data=wav_bytes(speechlike()))
    assert (refused.value.code, refused.value.status_code) == ("prompt_held", 409)
    assert not Clip.objects.exists()

    # The admin's two actions on the operators' queue.
    admin = PromptReportAdmin(PromptReport, None)
    admin.message_user = lambda *args, **kwargs: None
    admin.dismiss(None, PromptReport.objects.filter(prompt=prompt)[:1])
    prompt.refresh_from_db()
    assert not prompt.held_for_review and prompt.is_active
    assert set(PromptReport.objects.values_list("resolution", flat=True)) == {"dismissed"}
    assert clip_submit(contributor=ContributorFactory(), prompt_id=prompt.pk, data=wav_bytes(speechlike())).created
    assert prompt.pk in served_to(bystander)
    prompt_report(reporter=bystander, prompt_id=prompt.pk, reason="offensive")
    admin.retire(None, PromptReport.objects.filter(resolution=""))
    prompt.refresh_from_db()
    assert not prompt.is_active and not prompt.held_for_review
    assert prompt.pk not in served_to(ContributorFactory())


# --- proposals -------------------------------------------------------------------------------------------------

GOOD = "The little boat sailed slowly across the quiet lake."


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "sentence_empty"),
        ("   ", "sentence_empty"),
        (["a", "list"], "sentence_invalid"),
        ("Hello there.", "sentence_length"),
        ("the " * 15 + "end.", "sentence_length"),
        ("a" * 126, "sentence_too_long"),
        ("We left at 8 in the morning.", "sentence_digits"),
        ("Rock & roll is here to stay.", "sentence_characters"),
        ("<script>alert(document.cookie)</script> is not a sentence", "sentence_characters"),
        ("The caf\u00e9 is open all day long.", "sentence_characters"),
        ("Tabs\tand\nnew lines are fine but this\u202eis not.", "sentence_characters"),
        ("The NASA rocket flew to the moon.", "sentence_abbreviation"),
        ("Dr. Smith walked down the long road.", "sentence_abbreviation"),
        ("We met on Main St. after the long rain.", "sentence_abbreviation"),
        ("Bring fruit, bread, cheese, etc. to the picnic.", "sentence_abbreviation"),
        ("The train leaves at ten a.m. every day.", "sentence_abbreviation"),
        ("The zorblax flimmed the quiet grobnar.", "sentence_unpronounceable"),
        (GOOD.upper().replace(".", "!"), "sentence_abbreviation"),
    ],
)
def test_a_bad_proposal_is_refused_with_a_code_and_nothing_is_stored(api, text, code):
    response = api.post("/api/v1/sentences/", {"text": text}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert not SentenceProposal.objects.exists()


def test_words_that_end_a_sentence_are_not_taken_for_abbreviations(api):
    for text in ["She looked at me and said no.", "We sat for hours in the warm sun.", "He waited. Then he left."]:
        assert api.post("/api/v1/sentences/", {"text": text}, format="json").status_code == 201, text


def test_an_unpronounceable_proposal_names_the_words(api):
    body = api.post("/api/v1/sentences/", {"text": "The zorblax flimmed the quiet grobnar."}, format="json").json()
    assert body["missing_words"] == ["zorblax", "flimmed", "grobnar"]


def test_duplicates_of_a_prompt_or_an_open_proposal_are_refused_after_normalisation(api):
    prompt_create(text="A quiet river runs past the mill.")
    for text in ["a quiet River runs past the Mill!", "\u201cA quiet river\u201d runs past the mill"]:
        response = api.post("/api/v1/sentences/", {"text": text}, format="json")
        assert response.status_code == 409 and response.json()["code"] == "sentence_duplicate"
    assert api.post("/api/v1/sentences/", {"text": GOOD}, format="json").status_code == 201
    other = client_for(ContributorFactory())
    response = other.post("/api/v1/sentences/", {"text": "  the little boat sailed slowly across the quiet lake  "})
    assert response.status_code == 409 and response.json()["code"] == "sentence_duplicate"


def test_proposals_need_consent_and_are_limited_per_contributor_per_day(settings):
    settings.SENTENCES = {"PROPOSALS_PER_DAY": 2}
    unconsented = client_for(ContributorFactory(cc0_consent_at=None))
    response = unconsented.post("/api/v1/sentences/", {"text": GOOD}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "consent_required"
    author = client_for(ContributorFactory())
    for text in [GOOD, "My sister baked a cake for the whole class."]:
        assert author.post("/api/v1/sentences/", {"text": text}, format="json").status_code == 201
    response = author.post("/api/v1/sentences/", {"text": "The garden is full of red roses."}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "proposal_quota"
    assert response["Retry-After"]
    # Another contributor's budget is their own.
    assert (
        client_for(ContributorFactory())
        .post("/api/v1/sentences/", {"text": "The garden is full of red roses."})
        .status_code
        == 201
    )


def test_two_trustee_approvals_make_a_prompt_and_self_review_is_refused():
    author = FounderFactory()  # a trustee too: still cannot approve their own sentence
    first, second, third = FounderFactory.create_batch(3)
    newcomer = ContributorFactory()
    proposal_id = client_for(author).post("/api/v1/sentences/", {"text": GOOD}, format="json").json()["id"]

    url = f"/api/v1/sentences/{proposal_id}/review"
    own = client_for(author).post(url, {"approve": True}, format="json")
    assert own.status_code == 403 and own.json()["code"] == "review_own"
    assert client_for(newcomer).post(url, {"approve": True}, format="json").json()["code"] == "not_trustee"
    assert client_for(newcomer).get("/api/v1/sentences/review").status_code == 403
    for bad in [{"approve": "yes"}, {"approve": 1}, {}]:
        response = client_for(first).post(url, bad, format="json")
        assert response.status_code == 400 and response.json()["code"] == "verdict_invalid"
    unknown = client_for(first).post("/api/v1/sentences/12x/review", {"approve": True}, format="json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "proposal_unknown"

    assert [p["id"] for p in client_for(first).get("/api/v1/sentences/review").json()] == [proposal_id]
    assert client_for(author).get("/api/v1/sentences/review").json() == []  # never one's own
    response = client_for(first).post(url, {"approve": True}, format="json")
    assert response.status_code == 201 and response.json()["proposal"]["status"] == "open"
    assert client_for(first).get("/api/v1/sentences/review").json() == []  # reviewed once
    duplicate = client_for(first).post(url, {"approve": True}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "review_duplicate"
    assert not Prompt.objects.filter(source=PROPOSAL_SOURCE).exists()

    response = client_for(second).post(url, {"approve": True}, format="json")
    assert response.json()["proposal"]["status"] == "accepted" and response.json()["approvals"] == 2
    prompt = Prompt.objects.get(source=PROPOSAL_SOURCE)
    assert (
        prompt.text == GOOD
        and prompt.words[:2] == ["the", "little"]
        and prompt.phones[1] == ["L", "IH", "T", "AH", "L"]
    )
    assert prompt.pk in served_to(newcomer)
    closed = client_for(third).post(url, {"approve": False}, format="json")
    assert closed.status_code == 409 and closed.json()["code"] == "proposal_closed"
    mine = client_for(author).get("/api/v1/sentences/").json()
    assert [(p["status"], p["approvals"], p["rejections"], p["prompt"]) for p in mine] == [
        ("accepted", 2, 0, prompt.pk)
    ]


def test_two_rejections_close_a_proposal_without_a_prompt():
    author = ContributorFactory()
    proposal_id = client_for(author).post("/api/v1/sentences/", {"text": GOOD}, format="json").json()["id"]
    for reviewer in FounderFactory.create_batch(2):
        client_for(reviewer).post(f"/api/v1/sentences/{proposal_id}/review", {"approve": False}, format="json")
    assert SentenceProposal.objects.get(pk=proposal_id).status == ProposalStatus.REJECTED
    assert not Prompt.objects.exists()
    # A closed proposal no longer blocks the same sentence.
    assert client_for(author).post("/api/v1/sentences/", {"text": GOOD}, format="json").status_code == 201


def test_the_admin_lists_open_reports_first(admin_client):
    reported, decided = PromptFactory(text="open report sentence"), PromptFactory(text="dismissed sentence")
    for prompt in (reported, decided):
        prompt_report(reporter=ContributorFactory(), prompt_id=prompt.pk, reason="misspelt")
    PromptReport.objects.filter(prompt=decided).update(resolution="dismissed")
    page = admin_client.get("/admin/contributors/promptreport/").content.decode()
    assert "open report sentence" in page and "dismissed sentence" not in page
    page = admin_client.get("/admin/contributors/promptreport/?state=resolved").content.decode()
    assert "dismissed sentence" in page and "open report sentence" not in page


# --- the lists in a fixed number of queries -----------------------------------------------------------------------


def _proposals(author, n: int, first: int = 0) -> None:
    SentenceProposal.objects.bulk_create(
        SentenceProposal(author=author, text=f"Sentence {i}.", normalised_text=f"sentence {i}", words=["SENTENCE"])
        for i in range(first, first + n)
    )


@pytest.mark.parametrize("n", [2, 30])
def test_the_proposal_lists_take_the_same_queries_however_long(n, django_assert_num_queries):
    author, reviewer = ContributorFactory(), FounderFactory()
    _proposals(author, n)
    author_client, reviewer_client = client_for(author), client_for(reviewer)

    # One query each (the contributor comes with the authenticated user): the proposals with their review counts,
    # and the queue; never one per proposal.
    with django_assert_num_queries(1):
        mine = author_client.get("/api/v1/sentences/").json()
    with django_assert_num_queries(1):
        queue = reviewer_client.get("/api/v1/sentences/review").json()

    assert [p["text"] for p in mine] == [f"Sentence {i}." for i in reversed(range(n))]
    assert all(p["approvals"] == 0 and p["rejections"] == 0 for p in mine)
    assert [p["text"] for p in queue] == [f"Sentence {i}." for i in range(min(n, 10))]  # oldest first, ten at a time


@pytest.mark.django_db(transaction=True)
def test_proposals_sent_at_once_stay_within_the_daily_limit(settings):
    """Six proposals at once, each on its own connection, against a limit of two: the count and the insert are one
    step under the author's row lock, so two are queued and four refused (without it, all six passed the count)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises all writers")
    settings.SENTENCES = {"PROPOSALS_PER_DAY": 2}
    author = ContributorFactory()
    texts = [
        "The little boat sailed slowly across the quiet lake.",
        "My sister baked a cake for the whole class.",
        "The garden is full of red roses.",
        "We walked home along the river after dinner.",
        "A small dog barked at the passing train.",
        "Her brother plays the piano every evening.",
    ]
    barrier = threading.Barrier(len(texts))
    outcomes: list[str] = []

    def propose(text: str) -> None:
        barrier.wait()
        try:
            sentence_propose(author=author, text=text)
            outcomes.append("ok")
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=propose, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "ok", *["proposal_quota"] * 4], outcomes
    assert SentenceProposal.objects.filter(author=author).count() == 2
