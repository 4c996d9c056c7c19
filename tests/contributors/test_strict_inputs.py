"""Strict inputs, tried with hostile values through the API: ids in ASCII digits only, profile text without control
characters, uploads in the documented lossless formats only, and a refused prompt that leaves no lexicon rows."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from contributors.models import Clip, Contributor, LexiconEntry, Prompt
from contributors.services.prompts import prompt_create
from core.errors import ServiceError
from core.inputs import parse_id
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, assign, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))  # written as escapes (RUF001)
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def spellings(pk: int) -> list[str]:
    """Strings Python's int() reads as ``pk`` that are not its ASCII digits."""
    digits = str(pk)
    return [
        digits.translate(ARABIC_INDIC),
        digits.translate(FULLWIDTH),
        f"0_{digits}",  # underscores, as in 1_0
        f" {digits} ",
        f"{digits}\n",
        f"+{digits}",
        f"{digits}.0",
    ]


def upload(client: APIClient, prompt_id: str, data: bytes | None = None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    audio = SimpleUploadedFile("take.wav", data or wav_bytes(speechlike()), content_type="audio/wav")
    return client.post("/api/v1/clips/", {"prompt": prompt_id, "audio": audio}, format="multipart")


def test_parse_id_reads_ascii_digits_only():
    assert [parse_id(v) for v in ["1", "007", 42, "9223372036854775807"]] == [1, 7, 42, 2**63 - 1]
    for hostile in ["\u0661", "\uff11", "1_0", " 1 ", "1 ", "\t1", "+1", "-1", "0", "1.0", "1e3", "0x1", "", True, 1.0,
                    None, "9223372036854775808", "9" * 30, "\u0663\n"]:  # fmt: skip
        assert parse_id(hostile) is None, repr(hostile)


def test_a_prompt_id_in_any_other_spelling_is_refused(api, settings):
    prompt = PromptFactory()
    for hostile in spellings(prompt.pk):
        response = upload(api, hostile)
        assert response.status_code == 400, hostile
        assert response.json()["code"] == "prompt_unknown", hostile
        assert "ASCII digits" in response.json()["message"]
    assert not Clip.objects.exists()
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.flac"))
    assert upload(api, str(prompt.pk)).status_code == 201  # the plain spelling still works


def test_a_clip_id_in_a_vote_url_is_ascii_digits_only():
    trustee = FounderFactory(vote_allowance=5)
    author = ContributorFactory()
    from contributors.services.clips import clip_submit

    clip = clip_submit(contributor=author, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike())).clip
    assign(trustee, clip)
    client = APIClient()
    client.force_authenticate(trustee.user)
    for hostile in spellings(clip.pk):
        for action, body in (("votes", {"verdict": "valid"}), ("skip", {}), ("report", {"reason": "noise"})):
            response = client.post(f"/api/v1/clips/{quote(hostile)}/{action}", body, format="json")
            assert (response.status_code, response.json()["code"]) == (404, "clip_unknown"), (hostile, action)
    assert client.post(f"/api/v1/clips/{clip.pk}/votes", {"verdict": "valid"}, format="json").status_code == 201


@pytest.mark.parametrize("count", ["\uff15", "\u0665", " 5", "5 ", "5.0", "0_5", "+5"])
def test_a_count_in_any_other_spelling_is_refused(api, count):
    PromptFactory()
    response = api.get("/api/v1/prompts/next", {"count": count})
    assert response.status_code == 400 and response.json()["code"] == "invalid", count
    assert api.get("/api/v1/prompts/next", {"count": "5"}).status_code == 200


@pytest.mark.parametrize("teacher", ["\uff11", "1_0", " 1", True, 1.5])
def test_a_training_runs_teacher_id_is_strict(teacher):
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.post(
        "/api/v1/training/runs/", {"release": "v1", "recipe": "mimic", "teacher": teacher}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid", teacher
    assert "teacher" in response.json()["message"]


HOSTILE_TEXT = [
    ("Scot\x07tish", "U+0007"),  # BEL
    ("Scot\ntish", "U+000A"),  # a new line splits a metadata row
    ("Scot\ttish", "U+0009"),  # so does a tab in a TSV
    ("\x1b[31mred", "U+001B"),  # a terminal escape
    ("Scot\x85tish", "U+0085"),  # C1 next line
    ("Scot\u2028tish", "U+2028"),  # line separator
    ("hsittocS\u202e", "U+202E"),  # right-to-left override
    ("Scot\u2066tish", "U+2066"),  # bidi isolate
    ("Scot\ue000tish", "U+E000"),  # private use
]


@pytest.mark.parametrize(("value", "code_point"), HOSTILE_TEXT)
def test_profile_text_with_control_characters_is_a_clear_400(api, contributor, value, code_point):
    response = api.patch("/api/v1/me", {"accent": value, "first_language": "English"}, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "text_control_characters" and body["field"] == "accent"
    assert code_point in body["message"] and "accent" in body["message"]
    contributor.refresh_from_db()
    assert (contributor.accent, contributor.first_language) == ("", "")  # nothing half-saved


def test_printable_text_in_any_script_is_kept(api, contributor):
    sinhala = "\u0dc1\u0dca\u200d\u0dbb\u0dd3"  # with a zero-width joiner, which the script needs
    for accent in ["Scottish", "Québécois", "廣東話", "नमस्ते", "ਪੰਜਾਬੀ", "کوردی", sinhala]:
        response = api.patch("/api/v1/me", {"accent": accent}, format="json")
        assert response.status_code == 200, (accent, response.json())
        contributor.refresh_from_db()
        assert contributor.accent == accent


def test_signup_with_control_characters_creates_nothing():
    response = APIClient().post(
        "/api/v1/auth/signup",
        {"username": "sneaky", "password": "a-long-enough-pass-9", "cc0_consent": True, "first_language": "En\x00g"},
        format="json",
    )
    assert response.status_code == 400
    response = APIClient().post(
        "/api/v1/auth/signup",
        {"username": "sneaky", "password": "a-long-enough-pass-9", "cc0_consent": True, "first_language": "En\x1bg"},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (400, "text_control_characters")
    assert not get_user_model().objects.filter(username="sneaky").exists()


def test_the_profile_page_shows_the_problem_at_the_field(client, contributor):
    client.force_login(contributor.user)
    response = client.post("/profile/", {"accent": "Scot\x07tish", "first_language": "", "cc0_consent": "on"})
    assert response.status_code == 200
    assert "U+0007" in response.context["form"].errors["accent"][0]
    assert Contributor.objects.get(pk=contributor.pk).accent == ""


def test_the_admin_form_applies_the_same_rule(admin_client, contributor):
    response = admin_client.post(f"/admin/contributors/contributor/{contributor.pk}/change/", {
        "age_band": "", "gender": "", "accent": "Scot\u202etish", "first_language": "", "vote_allowance": 0,
    })  # fmt: skip
    assert response.status_code == 200 and "U+202E" in response.content.decode()
    contributor.refresh_from_db()
    assert contributor.accent == ""


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("MP3", "MPEG_LAYER_III"), ("OGG", "VORBIS"), ("OGG", "OPUS"), ("WAV", "ULAW"), ("WAV", "ALAW"),
     ("WAV", "IMA_ADPCM"), ("WAV", "GSM610"), ("AIFF", "PCM_16"), ("AU", "PCM_16"), ("CAF", "PCM_16")],
)  # fmt: skip
def test_lossy_and_undocumented_uploads_are_refused(api, prompt, settings, fmt, subtype):
    rate = 8000 if subtype == "GSM610" else 48000
    data = wav_bytes(speechlike(2.0, rate=rate), rate=rate, fmt=fmt, subtype=subtype)

    response = upload(api, str(prompt.pk), data)

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "audio_format_unsupported"
    assert f"{fmt}/{subtype}" in body["message"] and "WAV" in body["message"] and "FLAC" in body["message"]
    assert not Clip.objects.exists()
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.flac"))


def test_a_refused_prompt_leaves_no_lexicon_rows_behind():
    with pytest.raises(ServiceError) as refused:
        prompt_create(
            text="The zorblax met a quuxlyfrob.", pronunciations={"zorblax": "Z AO1 R B L AE0 K S"}, source="test"
        )
    assert refused.value.code == "prompt_unpronounceable" and refused.value.extra["missing_words"] == ["quuxlyfrob"]
    assert not LexiconEntry.objects.filter(word="zorblax").exists()
    assert not Prompt.objects.filter(text__contains="zorblax").exists()
    # With both words given it goes through, lexicon and all.
    _, created = prompt_create(
        text="The zorblax met a quuxlyfrob.",
        pronunciations={"zorblax": "Z AO1 R B L AE0 K S", "quuxlyfrob": "K W AH1 K S L IY0 F R AA0 B"},
    )
    assert created and LexiconEntry.objects.filter(word__in=["zorblax", "quuxlyfrob"]).count() == 2


@pytest.mark.parametrize("name", ["best\u202emodel", "two\nlines", "bell\x07"])
def test_a_submission_name_shown_on_the_public_board_is_printable(name, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from benchmark.models import Submission

    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("researcher"))
    model = SimpleUploadedFile("model.onnx", b"not even a model", content_type="application/octet-stream")
    response = client.post("/api/v1/submissions/", {"file": model, "name": name}, format="multipart")
    assert (response.status_code, response.json()["code"]) == (400, "text_control_characters"), response.json()
    assert response.json()["field"] == "name"
    assert not Submission.objects.exists()
