"""Corpus releases, the leaderboard and submissions."""

from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Benchmark"

    def ready(self) -> None:
        from django.core import checks

        from benchmark.conf import benchmark_settings_check

        checks.register(benchmark_settings_check)
