"""manage.py trust_recompute: run the full trust engine over every vote and say what changed."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from contributors.services.trust import trust_recompute_all


class Command(BaseCommand):
    help = "Recompute every clip status and contributor trust from all votes (the backstop of the incremental path)."

    def handle(self, *args, **options) -> None:
        summary = trust_recompute_all(trigger="command")
        self.stdout.write(
            f"Recomputed in {summary.seconds:.2f} s ({summary.iterations} evaluations"
            f"{', a cycle resolved' if summary.cycle_resolved else ''}{', capped' if summary.capped else ''}): "
            f"{summary.clips_changed} clips changed, {summary.contributors_changed} contributors changed, "
            f"{summary.trustees} trustees (+{summary.trustees_gained} / -{summary.trustees_lost})."
        )
        for (old, new), count in sorted(summary.status_changes.items()):
            self.stdout.write(f"  {old} -> {new}: {count}")
