"""manage.py train --release V --recipe R [--config FILE] [--set KEY=VALUE] [--teacher RUN] [--members A,B] [--async]
manage.py train --release V --baselines [--seeds N] [--base-config FILE] [--async]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from training.models import TrainingRecipe, TrainingRunStatus
from training.services.baselines import release_baselines_create, release_baselines_train
from training.services.execution import run_execute
from training.services.runs import run_create


def _overrides(files: list[str], pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in files:
        try:
            data = json.loads(Path(name).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"The config file {name} cannot be read as JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise CommandError(f"The config file {name} must hold a JSON object of settings.")
        values.update(data)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"--set takes KEY=VALUE, e.g. train.epochs=4; got {pair!r}.")
        values[key.strip()] = value.strip()
    return values


class Command(BaseCommand):
    help = (
        "Train a recipe on a release: a deep teacher, a shallow net on labels, a mimic of a teacher run or an "
        "ensemble; or, with --baselines, the platform's baselines on a release (a deep teacher, the shallow net of "
        "its size on labels and that net as the teacher's mimic). By default runs train here and print their "
        "progress; --async hands them to the gpu queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--release", required=True, help="The release version, e.g. demo-1.")
        parser.add_argument("--recipe", choices=TrainingRecipe.values, help="The run's recipe (or --baselines).")
        parser.add_argument(
            "--baselines", action="store_true", help="The three baseline runs, at the sizes of --base-config."
        )
        parser.add_argument("--base-config", help="--baselines: the base config file (default: the setting).")
        parser.add_argument(
            "--seeds", type=int, default=1, help="--baselines: this many sets, seeds train.seed, +1, ... (default 1)."
        )
        parser.add_argument("--config", action="append", default=[], help="JSON file of settings (repeatable).")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.epochs=4")
        parser.add_argument("--teacher", type=int, help="mimic: the teacher's run id.")
        parser.add_argument("--members", default="", help="ensemble: member run ids, comma-separated.")
        parser.add_argument("--objective", default="mimic_l2", choices=["mimic_l2", "mimic_soft"])
        parser.add_argument("--async", dest="run_async", action="store_true", help="Train in the Celery worker.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["baselines"]:
            self._baselines(options)
            return
        if options["seeds"] != 1:
            raise CommandError("--seeds goes with --baselines; a single run takes --set train.seed=N.")
        if not options["recipe"]:
            raise CommandError("Give --recipe (one of " + ", ".join(TrainingRecipe.values) + ") or --baselines.")
        try:
            members = [int(m) for m in options["members"].split(",") if m.strip()]
        except ValueError as exc:
            raise CommandError(f"--members takes run ids separated by commas; got {options['members']!r}.") from exc
        try:
            run = run_create(
                release=options["release"],
                recipe=options["recipe"],
                overrides=_overrides(options["config"], options["set"]),
                teacher=options["teacher"],
                members=members,
                objective=options["objective"],
                enqueue=options["run_async"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if options["run_async"]:
            waiting = " (it starts when what it learns from has finished)" if run.teacher_id or members else ""
            self.stdout.write(f"Run {run.pk} ({run.name}) queued for the gpu worker{waiting}: /training/{run.pk}/")
            return
        self.stdout.write(f"Run {run.pk} ({run.name}) training here; progress on /training/{run.pk}/")
        outcome = run_execute(run_id=run.pk)
        run.refresh_from_db()
        if run.status != TrainingRunStatus.SUCCEEDED:
            raise CommandError(f"Run {run.pk} ended {run.status} ({outcome}): {run.error or 'see its log'}")
        test = run.metrics.get("test", {})
        scores = f"test PER {100 * test['per']:.1f} %, frame accuracy {100 * test['frame_acc']:.1f} %" if test else ""
        submitted = f"; leaderboard submission {run.submission_id}" if run.submission_id else ""
        self.stdout.write(f"Run {run.pk} succeeded: {run.parameters:,} parameters, {scores}{submitted}.")

    def _baselines(self, options: dict[str, Any]) -> None:
        if options["recipe"] or options["set"] or options["config"] or options["teacher"] or options["members"]:
            raise CommandError(
                "--baselines trains fixed recipes; give only --release, --seeds, --base-config and --async."
            )
        base = options["base_config"]
        if base and not Path(base).is_file():
            raise CommandError(f"The base config {base} does not exist.")
        try:
            common = {"release": options["release"], "base_config": base, "seeds": options["seeds"]}
            if options["run_async"]:
                sets = release_baselines_create(**common)
            else:
                sets = release_baselines_train(**common, say=self.stdout.write)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        runs = [run for baselines in sets for run in baselines]
        for run in runs:
            test = run.metrics.get("test", {})
            per = f", test PER {100 * test['per']:.1f} %" if "per" in test else ""
            self.stdout.write(f"Run {run.pk} ({run.name}): {run.status}, {run.parameters or 0:,} parameters{per}")
        failed = [r for r in runs if not options["run_async"] and r.status != TrainingRunStatus.SUCCEEDED]
        if failed:
            raise CommandError(f"Run {failed[0].pk} ended {failed[0].status}: {failed[0].error or 'see its log'}")
