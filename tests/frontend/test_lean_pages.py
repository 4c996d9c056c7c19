"""The pages read in a fixed number of queries: the home page's corpus figures come from the shared cache (one
read), a contributor's dashboard costs the same whatever the number of their clips."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from frontend import selectors as frontend_selectors
from tests.contributors.test_lean_reads import _clip
from tests.factories import ContributorFactory, PromptFactory

pytestmark = pytest.mark.django_db


def test_the_home_page_counts_are_cached(django_assert_num_queries):
    PromptFactory.create_batch(3)
    _clip(ContributorFactory())
    first = Client().get("/")
    assert first.status_code == 200
    with django_assert_num_queries(1):  # the cache's read: no aggregate over the clips
        again = Client().get("/")
    assert again.content == first.content
    # New clips show once the cached figures expire (at most OVERVIEW_CACHE_SECONDS later).
    _clip(ContributorFactory())
    assert frontend_selectors.corpus_overview().contributors == 1
    cache.clear()
    assert frontend_selectors.corpus_overview().contributors == 2


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_dashboard_costs_the_same_queries_for_many_clips(django_assert_max_num_queries):
    me = ContributorFactory()
    browser = Client()
    browser.force_login(me.user)
    _clip(me)
    few = _queries(browser, "/dashboard/")
    for _ in range(30):
        _clip(me)
    many = _queries(browser, "/dashboard/")
    assert many == few
    with django_assert_max_num_queries(9):
        browser.get("/dashboard/")
