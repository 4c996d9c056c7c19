"""manage.py founders add|remove USER...: name or remove founding trustees."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributors.models import Contributor
from contributors.services.trust import founders_set
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Name (add) or remove founding trustees; their votes start or stop counting everywhere at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["add", "remove", "list"])
        parser.add_argument("usernames", nargs="*")
        parser.add_argument(
            "--allowance",
            type=int,
            help="votes granted on top of those their recordings earn (founders seed the crowd); default unchanged",
        )

    def handle(self, *args, **options) -> None:
        if options["action"] == "list":
            for contributor in Contributor.objects.filter(is_founding_trustee=True).select_related("user"):
                # A founder who deleted their account stays a founder (their votes count as before), nameless.
                self.stdout.write(
                    contributor.user.username if contributor.user else f"({contributor.speaker_id}, deleted)"
                )
            return
        if not options["usernames"]:
            raise CommandError(f"Name at least one user to {options['action']}.")
        try:
            changed = founders_set(
                usernames=options["usernames"], founding=options["action"] == "add", allowance=options["allowance"]
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for contributor in changed:
            state = "founding trustee" if contributor.is_founding_trustee else "no longer a founder"
            trustee = "trustee" if contributor.is_trustee else "not a trustee"
            self.stdout.write(
                f"{contributor.user.username}: {state}, {trustee}, trust {contributor.trust:.3f}, "
                f"allowance {contributor.vote_allowance}"
            )
