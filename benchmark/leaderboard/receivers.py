"""The leaderboard's answers to release events (connected in BenchmarkConfig.ready)."""

from __future__ import annotations

from benchmark.leaderboard.services import submissions_reevaluate_enqueue
from benchmark.models import Release


def reevaluate_on_release(sender, *, release: Release, **kwargs) -> None:
    """A new ready release re-scores every succeeded submission on it (enqueued after commit)."""
    submissions_reevaluate_enqueue(release=release)
