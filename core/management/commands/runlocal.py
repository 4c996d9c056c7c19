"""manage.py runlocal: the development web server and a real Celery worker (with beat) together.

One Ctrl-C stops both. One worker consumes the default and gpu queues, so on a laptop training runs beside
clip analysis; leaderboard evaluations have a second worker of their own (queue ``eval``, ``--eval-concurrency``),
so a submission never delays a clip analysis. A worker that exits (killed, out of memory, a broker error) is
started again after a back-off (core.supervisor), with a line in the log. Production runs them as separate
services (docker-compose.yml).
"""

from __future__ import annotations

import os
import signal
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from core.supervisor import Supervisor


class Command(BaseCommand):
    help = "Run the web server on 127.0.0.1:8000, a Celery worker for the default and gpu queues and one for eval."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--eval-concurrency", type=int, default=1)

    def handle(self, *args, **options) -> None:
        # Django's autoreloader re-runs this command in a child with RUN_MAIN set; only the outer
        # process owns the worker, so a code reload does not start a second one.
        if os.environ.get("RUN_MAIN") == "true":
            call_command("runserver", options["addrport"])
            return
        celery = [sys.executable, "-m", "celery", "-A", "config.worker", "worker", "--loglevel", "INFO"]
        say = self.stderr.write
        workers = [
            Supervisor(
                "Celery worker",
                [*celery, "--beat", "-Q", "default,gpu", "--concurrency", str(options["concurrency"])],
                log=say,
            ),
            Supervisor(
                "Celery evaluation worker",
                [*celery, "-n", "eval@%h", "-Q", "eval", "--concurrency", str(options["eval_concurrency"]),
                 "--prefetch-multiplier", "1"],
                log=say,
            ),
        ]  # fmt: skip
        worker, evaluator = (supervisor.start() for supervisor in workers)
        self.stdout.write(
            f"Celery worker started (pid {worker.pid}; evaluations: pid {evaluator.pid}); "
            f"the site is at http://{options['addrport']}/; a worker that exits is started again"
        )
        # SIGTERM (a process manager, `kill`) and SIGHUP (the terminal closed) stop everything as Ctrl-C does: the
        # workers lead process groups of their own, which neither a terminal nor a process manager signals.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)
        try:
            call_command("runserver", options["addrport"])
        except KeyboardInterrupt:
            pass
        finally:
            for supervisor in workers:
                supervisor.stop()  # warm shutdown: running tasks finish, or go back to the broker
            try:
                for supervisor in workers:
                    supervisor.wait(timeout=30)
            except KeyboardInterrupt:  # a second Ctrl-C: no waiting; their unfinished tasks wait in the broker
                for supervisor in workers:
                    supervisor.kill()
            self.stdout.write("Stopped the web server and the worker.")


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
