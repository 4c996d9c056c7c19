"""`manage.py demo [--if-empty]`: seed a demo site with founders, prompts and espeak-ng clips."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from demo.seed import CORPUS_VOICES, DEMO_RELEASE, SIMULATED, demo_database_is_empty, demo_seed


class Command(BaseCommand):
    help = (
        "Seed a demo: founding trustees, an admin, original prompts and clips spoken by espeak-ng voices, all "
        "through the upload pipeline, an imported seed corpus, release demo-1, and the paper's comparison trained "
        "on it (a teacher, the shallow net of its size on the labels, that net as its mimic). Accounts that "
        "already exist are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help=(
                "Do nothing when the database already has any contributor or prompt, unless they are those of a "
                "demo seed that stopped part-way: that one is finished."
            ),
        )
        parser.add_argument(
            "--contributors",
            type=int,
            default=len(SIMULATED),
            help=f"How many simulated contributors record (0-{len(SIMULATED)}; default all).",
        )
        parser.add_argument(
            "--corpus-speakers",
            type=int,
            default=len(CORPUS_VOICES),
            help=f"How many voices read the imported seed corpus (0-{len(CORPUS_VOICES)}; default all).",
        )
        parser.add_argument(
            "--no-release",
            action="store_true",
            help="Stop after the clips and votes: no release demo-1, and so nothing to train on.",
        )
        parser.add_argument(
            "--train",
            choices=["queue", "here", "no"],
            default="queue",
            help=(
                "After the release, a teacher, the shallow net on labels and the teacher's mimic: queued for the "
                "worker (default), trained here, or not."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and not demo_database_is_empty():
            self.stdout.write("The database already has contributors or prompts; no demo seeded.")
            return
        try:
            demo_seed(
                out=self.stdout.write,
                progress=options["verbosity"] >= 1,
                contributors=options["contributors"],
                corpus_speakers=options["corpus_speakers"],
                release=not options["no_release"],
            )
            if options["no_release"]:
                return
            from demo.training import demo_training

            demo_training(version=DEMO_RELEASE, mode=options["train"], out=self.stdout.write)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
