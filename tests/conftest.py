"""Shared fixtures: media in a temporary folder, an API client, a consenting contributor."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tests.factories import ContributorFactory, PromptFactory

# Unit tests enqueue after-commit work (clip analysis) but no worker consumes it: keep those messages in
# memory. The integration tests start real workers on real brokers with their own connections.
# Celery reads the variable before its own configuration, so both are set.
os.environ["CELERY_BROKER_URL"] = "memory://"
celery_app.conf.broker_url = "memory://"


# Under pytest-xdist (``make test``) each worker gets its share of the cores for PyTorch and NumPy, and
# so do the processes the tests start: two workers each running two threads on two cores thrash.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))
    # The variable reaches the processes the tests start; this process imported torch (through Django's app
    # loading) before it was set, and OpenMP read it then: tiny tensor ops on oversubscribed threads cost
    # 10-60x their single-thread time (the release aligner's EM, under load).
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# No xdist groups: the modules that share the session fixture ``tiny`` (a corpus aligned once per worker, about
# 10 s) finish sooner spread over the workers than queued on one (measured on 2 cores, 4 workers: 469 s spread,
# 516 s grouped).

# The longest tests, longest first (measured: two minutes on a loaded 2-core run, down to 20 s), so that
# under xdist each starts on the first worker free and the short ones fill in around them. This needs the
# Makefile's ``--maxschedchunk 1``: by default xdist hands each worker a first chunk of a quarter of its share of
# consecutive tests, and all of these went to one worker, which then ran them one after another while the other
# three finished 6 minutes sooner (920 s against 550 s of tests on a loaded run).
_LONGEST_FIRST = (
    "tests/benchmark/test_release_shared_corpus.py",
    "tests/demo/test_demo.py::test_demo_seeds",
    "tests/training/test_run_worker.py::test_a_run_killed",
    "tests/frontend/test_browser.py::test_a_contributor_signs_up",
    "tests/demo/test_crowd_grows.py",
    "tests/benchmark/test_submission_hardening.py::test_a_killed",
    "tests/config/test_celery_worker.py",
    "tests/frontend/test_csp_browser.py",
    "tests/config/test_runlocal.py",
    "tests/training/test_run_config.py::test_a_run_trains_evaluates_and_exports",
    "tests/demo/test_demo_training.py::test_the_demo_trains",
)


def _longest_first_rank(item: pytest.Item) -> int:
    return next(
        (rank for rank, prefix in enumerate(_LONGEST_FIRST) if item.nodeid.startswith(prefix)), len(_LONGEST_FIRST)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_longest_first_rank)  # stable: the rest stays in file order
    # xdist (``--maxschedchunk 1``) gives each worker two tests to start with, the second queued behind the first:
    # one long test each, with a short one queued behind it, so that no worker starts with two long ones in a row.
    long_count = sum(_longest_first_rank(item) < len(_LONGEST_FIRST) for item in items)
    starters = min(_workers, long_count, len(items) - long_count)
    if _workers > 1 and starters:
        firsts, later, shorts = items[:starters], items[starters:long_count], items[long_count:]
        paired = [test for pair in zip(firsts, shorts[:starters], strict=True) for test in pair]
        items[:] = paired + later + shorts[starters:]


def xdist_worker_index() -> int:
    """0 for the first pytest-xdist worker (or no xdist), 1 for the second...: for resources that tests on
    different workers must not share (a Redis database, for one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """New passwords hashed with MD5, as Django's testing guide advises: the production PBKDF2 (a million
    iterations, 0.4 CPU-s a hash here) made every sign-up and password login of the suite cost that much. The
    production hashers stay behind it, so a hash a subprocess made under the real settings still verifies."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]


# Fixtures that give a test the database (pytest-django's, and the ones this suite builds on them).
_DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "live_server",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
}


@pytest.fixture(autouse=True)
def _fresh_throttles(request):
    """Rate limits, lock-outs and cached counts live in the database (its cache table, core_rate_counter, axes'
    attempts) or in Redis: each test that can reach them starts with none spent. Tests without the database
    cannot reach them, and must not open it."""
    if not (request.node.get_closest_marker("django_db") or _DATABASE_FIXTURES & set(request.fixturenames)):
        return
    from axes.models import AccessAttempt
    from django.core.cache import cache

    from core.models import RateCounter

    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        cache.clear()
        RateCounter.objects.all().delete()
        AccessAttempt.objects.all().delete()


@pytest.fixture
def contributor(db):
    return ContributorFactory()


@pytest.fixture
def prompt(db):
    return PromptFactory()


@pytest.fixture
def api(contributor) -> APIClient:
    client = APIClient()
    client.force_authenticate(contributor.user)
    return client


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a backing service is absent on a developer's machine; in CI its absence is a failure."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must provide it)")
    pytest.skip(message)


@pytest.fixture
def task_sends(monkeypatch) -> Callable[[Any], list[Any]]:
    """``task_sends(task)``: a list that records, in order, what ``task.delay`` is called with from then on, instead
    of sending it to a broker (a test that wants the message itself, not its consumer)."""

    def record(task: Any) -> list[Any]:
        calls: list[Any] = []
        monkeypatch.setattr(task, "delay", calls.append)
        return calls

    return record
