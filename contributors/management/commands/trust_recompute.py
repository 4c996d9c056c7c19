"""manage.py trust_recompute [--check] [--from-founders]: the full trust engine over every vote."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributors.services.trust import trust_check, trust_recompute_all


class Command(BaseCommand):
    help = (
        "Recompute every clip status and contributor trust from all votes (the backstop of the incremental "
        "path), or with --check compare the database with that recompute and change nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; exit 1 and list the differences if the database differs from a full recompute",
        )
        parser.add_argument(
            "--from-founders",
            action="store_true",
            help="re-ground the trustees from the founders alone instead of starting from the stored trustees",
        )
        parser.add_argument("--limit", type=int, default=50, help="differences to list with --check (default 50)")

    def handle(self, *args, **options) -> None:
        if options["check"]:
            if options["from_founders"]:
                raise CommandError(
                    "--check compares with the recompute from the stored trustees; drop --from-founders."
                )
            self._check(limit=max(options["limit"], 0))
            return
        summary = trust_recompute_all(trigger="command", from_founders=options["from_founders"])
        self.stdout.write(
            f"Recomputed in {summary.seconds:.2f} s ({summary.iterations} evaluations"
            f"{', a cycle resolved' if summary.cycle_resolved else ''}{', capped' if summary.capped else ''}): "
            f"{summary.clips_changed} clips changed, {summary.contributors_changed} contributors changed, "
            f"{summary.trustees} trustees (+{summary.trustees_gained} / -{summary.trustees_lost})."
        )
        for (old, new), count in sorted(summary.status_changes.items()):
            self.stdout.write(f"  {old} -> {new}: {count}")

    def _check(self, *, limit: int) -> None:
        check = trust_check(limit=max(limit, 1))
        if check.passed:
            self.stdout.write("The database equals a full recompute.")
            return
        for difference in check.differences[:limit]:
            self.stdout.write(f"  {difference}")
        more = "" if check.total <= limit else f" (the first {limit} listed)"
        raise CommandError(
            f"The database differs from a full recompute in {check.total} rows{more}; "
            "run manage.py trust_recompute to repair it, and report it: the incremental path should never leave this."
        )
