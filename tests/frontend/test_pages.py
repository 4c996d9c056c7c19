"""Server-rendered pages through Django's test client: sign-up shows every problem at once."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from contributors.models import Contributor
from tests.factories import ContributorFactory

pytestmark = pytest.mark.django_db


def test_signup_shows_every_problem_at_once_and_keeps_the_password(client):
    ContributorFactory(user__username="taken")

    response = client.post(
        "/signup/", {"username": "Taken", "password": "password", "email": "not-an-email", "cc0_consent": "on"}
    )

    form = response.context["form"]
    assert response.status_code == 200
    # The taken name (any case), the weak password and the bad email, in one answer rather than one per try.
    assert set(form.errors) == {"username", "password", "email"}
    assert "taken" in form.errors["username"][0] and "common" in " ".join(form.errors["password"])
    assert 'value="password"' in response.content.decode()  # not cleared: only the mistakes need retyping


def test_a_good_signup_still_goes_through(client):
    data = {"username": "newcomer", "password": "a-long-enough-pass-9", "cc0_consent": "on"}
    response = client.post("/signup/", data)

    assert response.status_code == 302 and response["Location"] == "/record/"


def test_the_home_page_invites_newcomers_to_sign_up_and_contributors_to_record(client):
    """A call to action in the page itself, not only the navigation bar's links."""
    assert '<a class="button primary" href="/signup/">' in client.get("/").content.decode()
    client.force_login(ContributorFactory().user)
    page = client.get("/").content.decode()
    assert '<a class="button primary" href="/record/">' in page and 'href="/signup/"' not in page


def test_signup_asks_for_the_cc0_dedication_and_a_guardian_for_minors(client):
    base = {"username": "young", "password": "a-long-enough-pass-9"}

    no_cc0 = client.post("/signup/", base).context["form"]
    minor = client.post("/signup/", {**base, "cc0_consent": "on", "age_band": "0-12"}).context["form"]
    agreed = {**base, "cc0_consent": "on", "age_band": "0-12", "guardian_consent": "on"}
    no_address = client.post("/signup/", agreed).context["form"]
    guarded = client.post("/signup/", {**agreed, "guardian_email": "parent@example.org"})

    assert "CC0" in no_cc0.errors["cc0_consent"][0]
    assert "guardian" in minor.errors["guardian_consent"][0]
    assert "e-mail" in no_address.errors["guardian_email"][0]
    assert guarded.status_code == 302 and guarded["Location"] == "/record/"
    assert Contributor.objects.get(user__username="young").guardian_email == "parent@example.org"


def test_the_favicon_is_served_and_linked(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert b'rel="icon" href="/static/frontend/favicon.ico"' in client.get("/login/").content


class _Ids(HTMLParser):
    """Every element id of a page, and every id its aria-describedby attributes name."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.described_by: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name == "aria-describedby" and value:
                self.described_by.extend(value.split())


@pytest.mark.parametrize("path", ["/signup/", "/login/", "/profile/"])
def test_every_field_description_a_form_points_to_is_on_the_page(client, path):
    # A screen reader reads a field's help text through aria-describedby: an id that is not there reads nothing.
    if path == "/profile/":
        client.force_login(ContributorFactory().user)
    page = _Ids()
    page.feed(client.get(path).content.decode())
    assert page.described_by or path == "/login/"
    assert set(page.described_by) <= page.ids, set(page.described_by) - page.ids
