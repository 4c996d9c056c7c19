"""The demo's tests: its release is built from the benchmark tests' small corpus of valid clips; the seeding tests
speak with espeak-ng into a media root of their own."""

import shutil

import pytest

from tests.benchmark.conftest import corpus  # noqa: F401  (a fixture, used by name)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)"
)


@pytest.fixture
def demo_isolated(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
