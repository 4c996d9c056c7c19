"""Shared fixtures: media in a temporary folder, an API client, a consenting contributor."""

from __future__ import annotations

import os
import socket

import pytest
from rest_framework.test import APIClient

from config.celery import app as celery_app
from tests.factories import ContributorFactory, PromptFactory

# Unit tests enqueue after-commit work (clip analysis) but no worker consumes it: keep those messages in
# memory. The integration tests start real workers on real brokers with their own connections.
# Celery reads the variable before its own configuration, so both are set.
os.environ["CELERY_BROKER_URL"] = "memory://"
celery_app.conf.broker_url = "memory://"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Rate limits live in the cache: each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()


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
