"""manage.py runlocal: the development web server and a real Celery worker (with beat) together.

One Ctrl-C stops both. The worker consumes both queues, so on a laptop training and evaluation run
beside normalisation; production runs them as separate services (docker-compose.yml).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server on 127.0.0.1:8000 and a Celery worker for the default and gpu queues."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, **options) -> None:
        # Django's autoreloader re-runs this command in a child with RUN_MAIN set; only the outer
        # process owns the worker, so a code reload does not start a second one.
        if os.environ.get("RUN_MAIN") == "true":
            call_command("runserver", options["addrport"])
            return
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "-Q",
                "default,gpu",
                "--concurrency",
                str(options["concurrency"]),
                "--loglevel",
                "INFO",
            ]
        )
        self.stdout.write(f"Celery worker started (pid {worker.pid}); the site is at http://{options['addrport']}/")
        # SIGTERM (a process manager, `kill`) stops both as Ctrl-C does, instead of orphaning the worker.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            call_command("runserver", options["addrport"])
        except KeyboardInterrupt:
            pass
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish or are requeued
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
            self.stdout.write("Stopped the web server and the worker.")


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
