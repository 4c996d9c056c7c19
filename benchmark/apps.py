"""Corpus releases, the leaderboard and submissions (built in later issues)."""

from django.apps import AppConfig


class BenchmarkConfig(AppConfig):
    name = "benchmark"
    verbose_name = "Benchmark"
