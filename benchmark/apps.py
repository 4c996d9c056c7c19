"""Corpus releases, the leaderboard and submissions (built in later issues)."""

from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Benchmark"

    def ready(self) -> None:
        from django.core import checks

        from benchmark.throttling import byte_rate_check

        checks.register(byte_rate_check)
