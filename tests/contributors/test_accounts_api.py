"""Sign-up, login (session + CSRF), tokens, the profile, and the next prompts to read."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.utils import timezone
from rest_framework.test import APIClient

from contributors.models import Contributor, PromptType
from contributors.services.accounts import contributor_signup
from core.errors import ServiceError
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def signup(client: APIClient, **extra):
    body = {"username": "ada", "password": PASSWORD, "cc0_consent": True, **extra}
    return client.post("/api/v1/auth/signup", body, format="json")


def test_signup_creates_a_contributor_with_consent_and_logs_in():
    client = APIClient()
    response = signup(client, gender="female", age_band="30-44", accent="Scottish")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["speaker_id"].startswith("spk-")
    assert body["cc0_consent"] is True
    contributor = Contributor.objects.get(user__username="ada")
    assert (contributor.gender, contributor.age_band, contributor.accent) == ("female", "30-44", "Scottish")
    assert client.get("/api/v1/me").status_code == 200  # the session cookie is set


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"password": "short"}, "password_invalid"),
        ({"password": "12345678901"}, "password_invalid"),
        ({"username": "a"}, "invalid"),
        ({"gender": "robot"}, "invalid"),
        ({"age_band": "200"}, "invalid"),
        ({"email": "a" * 250 + "@example.org"}, "invalid"),  # past the column's 254: a 500 on PostgreSQL
    ],
)
def test_bad_signups_are_400s_with_a_code(extra, code):
    response = signup(APIClient(), **extra)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Contributor.objects.exists()


@pytest.mark.parametrize("email", ["a" * 250 + "@example.org", "not an address"], ids=["too-long", "malformed"])
def test_the_signup_service_and_page_refuse_an_address_too_long_or_malformed(client, email):
    with pytest.raises(ServiceError) as refused:
        contributor_signup(username="ada", password="a long passphrase 42", email=email)
    assert refused.value.code == "email_invalid"
    page = client.post("/signup/", {"username": "ada", "password": "a long passphrase 42", "email": email})
    assert page.status_code == 200 and page.context["form"].errors["email"]
    assert not Contributor.objects.exists()


def test_a_taken_username_is_a_409_whatever_the_case():
    signup(APIClient())
    response = signup(APIClient(), username="ADA")

    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


def test_session_login_enforces_csrf_on_writes(prompt):
    signup(APIClient())
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/login/")  # any page of the site hands the browser its CSRF cookie
    login = browser.post(
        "/api/v1/auth/login",
        {"username": "ada", "password": PASSWORD},
        format="json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert login.status_code == 200

    without_token = browser.patch("/api/v1/me", {"accent": "Geordie"}, format="json")
    csrf = browser.cookies["csrftoken"].value
    with_token = browser.patch("/api/v1/me", {"accent": "Geordie"}, format="json", HTTP_X_CSRFTOKEN=csrf)

    assert without_token.status_code == 403
    assert without_token.json()["code"] == "permission_denied"
    assert with_token.status_code == 200
    assert with_token.json()["accent"] == "Geordie"


def test_wrong_password_is_a_400():
    signup(APIClient())
    response = APIClient().post("/api/v1/auth/login", {"username": "ada", "password": "nope"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "login_failed"


def test_a_token_authenticates_scripts(prompt):
    signup(APIClient())
    token = APIClient().post("/api/v1/auth/token", {"username": "ada", "password": PASSWORD}, format="json")
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")

    response = script.post("/api/v1/clips/", {"prompt": prompt.pk, "audio": _wav_file()}, format="multipart")

    assert response.status_code == 201


def test_a_bad_token_is_a_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token deadbeef")

    response = client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_consent_can_be_given_later_and_is_timestamped_once():
    signup(APIClient(), cc0_consent=False)
    client = APIClient()
    client.force_authenticate(Contributor.objects.get().user)

    first = client.patch("/api/v1/me", {"cc0_consent": True}, format="json").json()
    second = client.patch("/api/v1/me", {"cc0_consent": True}, format="json").json()

    assert first["cc0_consent"] is True
    assert first["cc0_consent_at"] == second["cc0_consent_at"]


def test_next_prompts_are_shared_first_then_least_recorded_and_never_already_read(api, contributor):
    shared = PromptFactory(prompt_type=PromptType.SHARED)
    popular, fresh, mine = PromptFactory(), PromptFactory(), PromptFactory()
    for seed in range(3):
        other = APIClient()
        other.force_authenticate(ContributorFactory().user)
        other.post("/api/v1/clips/", {"prompt": popular.pk, "audio": _wav_file(seed)}, format="multipart")
    api.post("/api/v1/clips/", {"prompt": mine.pk, "audio": _wav_file(99)}, format="multipart")

    ids = [p["id"] for p in api.get("/api/v1/prompts/next?count=5").json()]

    assert ids == [shared.pk, fresh.pk, popular.pk]


@pytest.mark.parametrize("count", ["0", "51", "many"])
def test_next_prompts_count_is_validated(api, count):
    response = api.get(f"/api/v1/prompts/next?count={count}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_one_profile_per_user_is_a_database_constraint():
    contributor = ContributorFactory()
    with pytest.raises(IntegrityError):
        Contributor.objects.create(user=contributor.user)


def test_the_openapi_schema_and_docs_are_served():
    client = APIClient()
    schema = client.get("/api/schema/")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/v1/clips/" in schema.content
    assert docs.status_code == 200


def _wav_file(seed: int = 0):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("a.wav", wav_bytes(speechlike(seed=seed)), content_type="audio/wav")


@pytest.mark.parametrize("band", ["0-12", "13-17"])
def test_a_minor_consents_only_with_a_guardians_agreement(band):
    refused = signup(APIClient(), age_band=band)
    no_address = signup(APIClient(), age_band=band, guardian_consent=True)
    bad_address = signup(APIClient(), age_band=band, guardian_consent=True, guardian_email="mum at home")
    asked = timezone.now()
    accepted = signup(APIClient(), age_band=band, guardian_consent=True, guardian_email=" mum@example.org ")

    assert refused.status_code == 400 and refused.json()["code"] == "guardian_consent_required"
    assert no_address.status_code == 400 and no_address.json()["code"] == "guardian_email_required"
    assert bad_address.status_code == 400 and bad_address.json()["code"] == "guardian_email_invalid"
    assert accepted.status_code == 201, accepted.json()
    contributor = Contributor.objects.get()  # the refused sign-ups left no account behind
    assert contributor.has_consented and asked <= contributor.guardian_consent_at <= timezone.now()
    assert contributor.guardian_email == "mum@example.org"


def test_a_consenting_adult_cannot_become_a_minor_without_a_guardian():
    client = APIClient()
    assert signup(client, age_band="18-29").status_code == 201

    refused = client.patch("/api/v1/me", {"age_band": "13-17"}, format="json")
    body = {"age_band": "13-17", "guardian_consent": True, "guardian_email": "dad@example.org"}
    accepted = client.patch("/api/v1/me", body, format="json")

    assert refused.status_code == 400 and refused.json()["code"] == "guardian_consent_required"
    assert accepted.status_code == 200 and Contributor.objects.get().age_band == "13-17"


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/signup"])
@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_a_cross_site_post_cannot_open_a_session(path, fmt):
    """Login CSRF: a form on another site posting here must not log the visitor into the attacker's account."""
    signup(APIClient())
    body = {"username": "ada" if path.endswith("login") else "mallory", "password": PASSWORD, "cc0_consent": True}
    victim = APIClient(enforce_csrf_checks=True)

    response = victim.post(path, body, format=fmt, HTTP_ORIGIN="http://evil.example")

    assert response.status_code == 403 and response.json()["code"] == "csrf_failed"
    assert "sessionid" not in response.cookies
    assert not Contributor.objects.filter(user__username="mallory").exists()
