"""Corpus releases, the leaderboard and submissions."""

from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Benchmark"

    def ready(self) -> None:
        from django.core import checks

        from benchmark.conf import benchmark_settings_check
        from benchmark.leaderboard.receivers import reevaluate_on_release
        from benchmark.releases.signals import release_ready

        checks.register(benchmark_settings_check)
        release_ready.connect(reevaluate_on_release, dispatch_uid="leaderboard-reevaluate-on-release")
