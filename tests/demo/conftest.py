"""The demo's release is built from the benchmark tests' small corpus of valid clips."""

from tests.benchmark.conftest import corpus  # noqa: F401  (a fixture, used by name)
