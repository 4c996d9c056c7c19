"""Password guessing is locked out (django-axes) on every way in: the login page, the admin's login, the API's
auth/login and auth/token. A locked-out client is refused even with the right password, and gets in again after
the cool-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, ContributorFactory, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


@pytest.fixture
def ada():
    return ContributorFactory(user__username="ada").user


def _cool_off_passes() -> None:
    """The cool-off elapses: every recorded failure is aged past it (axes compares attempt times to now)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))


def _api_login(client: APIClient, password: str, path: str = "/api/v1/auth/login", **extra):
    return client.post(path, {"username": "ada", "password": password}, format="json", **extra)


def test_the_api_locks_out_after_the_limit_even_the_right_password_then_recovers(ada):
    client = APIClient()
    for _ in range(LIMIT - 1):
        refused = _api_login(client, "wrong")
        assert (refused.status_code, refused.json()["code"]) == (400, "login_failed")
    # The failure that reaches the limit is answered as a lock-out already.
    assert _api_login(client, "wrong").status_code == 429

    locked = _api_login(client, TEST_PASSWORD)
    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "login_locked" and body["message"]
    assert int(locked["Retry-After"]) == body["retry_after_s"] == 15 * 60
    assert "sessionid" not in locked.cookies
    # The token endpoint is the same door: locked too.
    token = _api_login(client, TEST_PASSWORD, "/api/v1/auth/token")
    assert (token.status_code, token.json()["code"]) == (429, "login_locked")

    _cool_off_passes()
    assert _api_login(client, TEST_PASSWORD).status_code == 200
    assert _api_login(APIClient(), TEST_PASSWORD, "/api/v1/auth/token").json()["token"]


def test_an_account_guessed_at_from_many_addresses_is_locked_too(ada):
    for i in range(LIMIT):
        assert _api_login(APIClient(), "wrong", REMOTE_ADDR=f"203.0.113.{i + 1}").status_code in (400, 429)
    fresh_address = _api_login(APIClient(), TEST_PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert fresh_address.status_code == 429
    # Another account from a fresh address is not affected.
    ContributorFactory(user__username="bob")
    other = APIClient().post(
        "/api/v1/auth/login", {"username": "bob", "password": TEST_PASSWORD}, format="json", REMOTE_ADDR="198.51.100.8"
    )
    assert other.status_code == 200


def test_a_forged_forwarded_for_header_does_not_escape_the_lock_out(ada):
    for i in range(LIMIT):
        _api_login(APIClient(), "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    ContributorFactory(user__username="bob")
    other = APIClient().post(
        "/api/v1/auth/login",
        {"username": "bob", "password": TEST_PASSWORD},
        format="json",
        HTTP_X_FORWARDED_FOR="10.9.9.9",
    )
    # Same REMOTE_ADDR, so the same client whatever the header says: the address is locked out.
    assert other.status_code == 429


def test_the_login_page_locks_out_then_recovers(ada):
    browser = Client()
    for _ in range(LIMIT - 1):
        page = browser.post("/login/", {"username": "ada", "password": "wrong"})
        assert page.status_code == 200 and page.context["form"].errors
    assert browser.post("/login/", {"username": "ada", "password": "wrong"}).status_code == 429
    locked = browser.post("/login/", {"username": "ada", "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode() and int(locked["Retry-After"]) > 0
    assert "_auth_user_id" not in browser.session

    _cool_off_passes()
    assert browser.post("/login/", {"username": "ada", "password": TEST_PASSWORD}).status_code == 302
    assert browser.session["_auth_user_id"] == str(ada.pk)


def test_the_admin_login_locks_out_then_recovers():
    UserFactory(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    for _ in range(LIMIT - 1):
        assert browser.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code == 200
    assert browser.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code == 429
    locked = browser.post("/admin/login/", {"username": "root", "password": TEST_PASSWORD})
    assert locked.status_code == 429
    assert browser.get("/admin/").status_code == 302  # still not in

    _cool_off_passes()
    assert browser.post("/admin/login/", {"username": "root", "password": TEST_PASSWORD}).status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_a_success_before_the_limit_forgives_the_earlier_failures(ada):
    client = APIClient()
    for _ in range(LIMIT - 1):
        _api_login(client, "wrong")
    assert _api_login(client, TEST_PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        assert _api_login(client, "wrong").status_code == 400
    assert _api_login(client, TEST_PASSWORD).status_code == 200


@pytest.mark.parametrize("door", ["api", "page"])
def test_an_open_session_guessing_its_password_to_delete_the_account_is_locked_out_too(ada, door):
    """The deletion asks for the password: through the API or the page, a wrong one counts as a failed login, so a
    session left open on a shared machine is not a free oracle for its password."""
    if door == "api":
        client = APIClient()
        client.force_login(ada)

        def delete(password: str):
            return client.post("/api/v1/me/delete", {"password": password}, format="json")
    else:
        client = Client()
        client.force_login(ada)

        def delete(password: str):
            return client.post("/account/delete/", {"password": password})

    for _ in range(LIMIT - 1):
        assert delete("guess").status_code == 400
    assert delete("guess").status_code == 429
    assert delete(TEST_PASSWORD).status_code == 429  # the right one too, while locked out
    ada.refresh_from_db()
    assert ada.contributor.deleted_at is None
    assert _api_login(APIClient(), TEST_PASSWORD).status_code == 429  # the same lock as the login's

    _cool_off_passes()
    assert delete(TEST_PASSWORD).status_code in (200, 302)
    ada.contributor.refresh_from_db()
    assert ada.contributor.deleted_at is not None
