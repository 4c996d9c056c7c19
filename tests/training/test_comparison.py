"""The paper's comparison on a release's page: runs that differ only in their seed make one row with its mean and
spread, and the two verdicts the project sets itself (the mimic against its teacher, the shallow net on labels
against the mimic); ``train --baselines --seeds N`` starts N seeded sets that share one alignment."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from benchmark.models import Release, ReleaseStatus
from tests.training.runs import TINY_BASE, write_base_config
from training.models import TrainingRun, TrainingRunStatus
from training.selectors import release_comparison

pytestmark = pytest.mark.django_db

TEACHER = {"model": {"kind": "dnn", "depth": 3, "width": 512}, "train": {"epochs": 3, "objective": "labels"}}
SNN = {"model": {"kind": "snn", "width": 5204, "bottleneck": 128}, "train": {"epochs": 3, "objective": "labels"}}
L2 = {"model": {"kind": "snn", "width": 5204, "bottleneck": 128}, "train": {"epochs": 3, "objective": "mimic_l2"}}


@pytest.fixture
def release():
    return Release.objects.create(version="v1", status=ReleaseStatus.READY)


def _run(release, recipe, config, per, seed, *, status=TrainingRunStatus.SUCCEEDED, parameters=1_532_024, **kw):
    config = {"model": dict(config["model"]), "train": {**config["train"], "seed": seed}}
    metrics = {"test": {"per": per}} if per is not None else {}
    return TrainingRun.objects.create(
        release=release, recipe=recipe, config=config, status=status, metrics=metrics, parameters=parameters, **kw
    )


def test_seeds_of_one_model_make_one_row_with_mean_and_spread_and_the_verdicts(release):
    teachers = [_run(release, "teacher-dnn", TEACHER, per, 1234 + k) for k, per in enumerate((0.49, 0.50, 0.51))]
    for k, per in enumerate((0.50, 0.505, 0.51)):
        _run(release, "snn-labels", SNN, per, 1234 + k, parameters=1_532_076)
    for k, per in enumerate((0.53, 0.54, 0.55)):
        _run(release, "mimic", L2, per, 1234 + k, parameters=1_532_076, teacher=teachers[k])
    # Neither a failed run nor one without a test PER, nor another size of teacher, joins the rows above.
    _run(release, "teacher-dnn", TEACHER, 0.10, 99, status=TrainingRunStatus.FAILED)
    _run(release, "teacher-dnn", TEACHER, None, 98)
    wide = {**TEACHER, "model": {"kind": "dnn", "depth": 3, "width": 2000}}
    _run(release, "teacher-dnn", wide, 0.45, 1234, parameters=14_000_000)

    rows, verdicts = release_comparison(release="v1")

    by_label = {row.label: row for row in rows}
    teacher = by_label["Deep MLP teacher 3 \N{MULTIPLICATION SIGN} 512"]
    assert teacher.pers == [0.49, 0.50, 0.51] and teacher.mean == pytest.approx(0.50)
    assert teacher.sd == pytest.approx(0.01)
    assert by_label["Deep MLP teacher 3 \N{MULTIPLICATION SIGN} 2000"].sd is None  # one seed: no spread
    mimic = by_label["SNN-MIMIC, L2 on logits (5204 hidden)"]
    assert mimic.mean == pytest.approx(0.54) and len(mimic.runs) == 3
    assert [row.label for row in rows] == [  # teachers by size, then the shallow nets
        "Deep MLP teacher 3 \N{MULTIPLICATION SIGN} 512",
        "Deep MLP teacher 3 \N{MULTIPLICATION SIGN} 2000",
        "SNN on labels (5204 hidden, 128-unit bottleneck)",
        "SNN-MIMIC, L2 on logits (5204 hidden)",
    ]

    # The mimic is judged against the row its own teachers are in (3 x 512), not the larger teacher.
    behind, gap = verdicts
    assert behind.points == pytest.approx(4.0) and not behind.met and behind.seeds == 3
    assert gap.points == pytest.approx(-3.5) and not gap.met


def test_the_release_runs_page_shows_the_comparison(release):
    for k, per in enumerate((0.49, 0.51)):
        _run(release, "teacher-dnn", TEACHER, per, 1234 + k)
    other = Release.objects.create(version="v2", status=ReleaseStatus.READY)
    _run(other, "teacher-dnn", TEACHER, 0.30, 1234)

    page = Client().get("/training/?release=v1").content.decode()

    assert "The comparison on v1" in page
    assert "49.00 %" in page and "51.00 %" in page and "50.00 %" in page and "1.41 %" in page  # mean and SD
    assert "30.00 %" not in page and "30 %" not in page  # the other release's run is not listed
    empty = Client().get("/training/?release=v2x").content.decode()
    assert "No run on v2x has finished with a test PER yet." in empty


def test_baselines_with_seeds_start_seeded_sets_sharing_one_alignment(release, tmp_path, settings):
    settings.TRAINING_BASE_CONFIG = write_base_config(tmp_path)

    out = io.StringIO()
    call_command("train", "--release", "v1", "--baselines", "--seeds", "3", "--async", stdout=out)

    runs = list(TrainingRun.objects.filter(release=release).order_by("pk"))
    assert len(runs) == 9 and out.getvalue().count(": queued") == 9
    seed = TINY_BASE["train"].get("seed", 1234)
    by_seed: dict[int, list[TrainingRun]] = {}
    for run in runs:
        by_seed.setdefault(run.config["train"]["seed"], []).append(run)
    assert sorted(by_seed) == [seed, seed + 1, seed + 2]
    for members in by_seed.values():
        assert sorted(r.recipe for r in members) == ["mimic", "snn-labels", "teacher-dnn"]
        mimic = next(r for r in members if r.recipe == "mimic")
        assert mimic.teacher in members  # each mimic learns from its own seed's teacher
        assert {r.config["align"]["seed"] in (0, seed) for r in members} == {True}
    # The later sets pin the aligner's seed to the first set's, so that every set trains on one alignment.
    assert {r.config["align"]["seed"] for r in by_seed[seed + 1]} == {seed}


def test_seed_counts_out_of_range_and_seeds_without_baselines_are_refused(release, tmp_path, settings):
    settings.TRAINING_BASE_CONFIG = write_base_config(tmp_path)
    with pytest.raises(CommandError, match="between 1 and 10 seeds"):
        call_command("train", "--release", "v1", "--baselines", "--seeds", "0", "--async")
    with pytest.raises(CommandError, match="--seeds goes with --baselines"):
        call_command("train", "--release", "v1", "--recipe", "teacher-dnn", "--seeds", "2")
    assert not TrainingRun.objects.exists()
