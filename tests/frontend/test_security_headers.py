"""Content-Security-Policy and Permissions-Policy on every page: every named URL pattern outside the JSON API
(the admin's included) is fetched as a founder who is staff, and each answer carries both headers; each HTML
page holds nothing the policy would block (inline script, event-handler attributes, inline style)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import FounderFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

PAGE_SKIP = {"logout", "admin:logout"}  # a GET answers 405 and would not log out anyway; a POST would end the session


def named_patterns() -> list[tuple[str, list[str]]]:
    """(name with namespace, its keyword arguments) of every named pattern outside /api/v1/."""
    found = []

    def walk(patterns, namespace: str, prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, inner, route)
            elif isinstance(entry, URLPattern) and entry.name and not route.startswith("api/v1/"):
                found.append((namespace + entry.name, list(entry.pattern.regex.groupindex)))

    walk(get_resolver().url_patterns, "", "")
    return found


class InlineFinder(HTMLParser):
    """What a strict CSP blocks in markup: script without src (JSON data blocks are not run), on* attributes,
    style attributes and <style> elements, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and "src" not in named and named.get("type") != "application/json":
            self.problems.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.problems.append(f"<style> at line {self.getpos()[0]}")
        for key, value in attrs:
            if key.startswith("on") or key == "style":
                self.problems.append(f"{key}= on <{tag}> at line {self.getpos()[0]}")
            if key in {"href", "src", "action"} and (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")


@pytest.fixture
def site(settings, tmp_path):
    """A release, a training run, a clip and a staff founder: every page has something to show."""
    from benchmark.models import Release
    from contributors.services.clips import clip_submit
    from tests.benchmark.conftest import build, make_corpus
    from tests.training.runs import write_base_config
    from training.services.runs import run_create

    make_corpus(speakers=6, clips_each=1)
    release = build("v1")
    run = run_create(release="v1", recipe="teacher-dnn", base_config=write_base_config(tmp_path), enqueue=False)
    staff = FounderFactory(user__is_staff=True, user__is_superuser=True)
    clip = clip_submit(contributor=staff, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=3)))
    assert Release.objects.filter(pk=release.pk).exists()
    ids = {"version": release.version, "run_id": run.pk, "clip_id": clip.clip.pk}
    return {"app_label": "contributors", "staff": staff, **ids}


def url_for(name: str, params: list[str], site: dict) -> str | None:
    values: dict[str, object] = {}
    for param in params:
        if param in site:
            values[param] = site[param]
        elif param == "object_id" and name.startswith("admin:"):
            # admin:<app>_<model>_<action>: the first row of that model, if the fixture made one.
            app_model = name.removeprefix("admin:").rsplit("_", 1)[0]
            model = next(
                (m for m in apps.get_models() if f"{m._meta.app_label}_{m._meta.model_name}" == app_model), None
            )
            row = model._default_manager.order_by("pk").first() if model else None
            if row is None:
                return None
            values[param] = row.pk
        else:
            return None
    return reverse(name, kwargs=values)


def test_every_page_has_a_strict_csp_and_a_permissions_policy(client, site):
    client.force_login(site["staff"].user)
    checked = []
    for name, params in named_patterns():
        if name in PAGE_SKIP:
            continue
        url = url_for(name, params, site)
        if url is None:
            continue
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        csp = response.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe" not in csp, (url, csp)
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (url, csp)
        policy = response.get("Permissions-Policy", "")
        assert "camera=()" in policy and "geolocation=()" in policy, (url, policy)
        expected_mic = "microphone=(self)" if name == "record" else "microphone=()"
        assert expected_mic in policy, (url, policy)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            finder = InlineFinder()
            finder.feed(response.content.decode())
            assert finder.problems == [], (url, finder.problems)
            checked.append(name)
    # The pages the site is made of were all rendered, not skipped for want of an argument.
    for name in ("home", "record", "validate", "dashboard", "profile", "leaderboard-page", "release-list-page",
                 "release-page", "training-runs-page", "training-run-page", "api-docs", "admin:index",
                 "admin:contributors_clip_changelist", "admin:contributors_clip_change",
                 "admin:benchmark_release_change", "admin:contributors_contributor_change"):  # fmt: skip
        assert name in checked, name


def test_anonymous_pages_and_json_answers_carry_the_headers_too(client):
    for url in ["/", "/login/", "/signup/", "/releases/", "/api/v1/releases/", "/api/v1/no-such-thing", "/healthz"]:
        response = client.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        assert "microphone=()" in response["Permissions-Policy"], url


def test_the_api_docs_start_up_script_is_a_file_not_inline(client):
    page = client.get("/api/docs/").content.decode()
    assert 'src="/api/docs/?script="' in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content
    assert client.get("/api/redoc/").status_code == 404  # dropped: it needs inline styles and a font CDN
