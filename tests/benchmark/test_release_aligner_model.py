"""A release is aligned by the platform's latest HMM: the previous release's (or a training run's, see
tests/training/test_runs.py), re-estimated on its own train split; a stored HMM that cannot be used gives way to a
flat start, said in the log and the datasheet, and never fails the build."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from benchmark.models import Release, ReleaseStatus
from benchmark.releases.services import release_build, release_create
from tests.benchmark.conftest import build, release_root
from training.ml.release_align import REFINE_PASSES

pytestmark = pytest.mark.django_db


def _aligner(settings, release) -> tuple[dict, str]:
    root = release_root(settings, release)
    return json.loads((root / "datasheet.json").read_text())["alignment"], (root / "README.md").read_text()


def test_a_second_release_is_aligned_from_the_firsts_hmm_and_rebuilds_byte_identical(release, settings):
    media = Path(settings.MEDIA_ROOT)
    v2 = build("v2")
    aligner, readme = _aligner(settings, v2)
    assert aligner["method"] == "hmm-from-model" and aligner["initialised_from"] == {"kind": "release", "name": "v1"}
    assert aligner["em_passes"] == REFINE_PASSES < 15 and "fallback" not in aligner
    assert f"the HMM of release v1, re-estimated here ({REFINE_PASSES} Viterbi EM passes over" in readme
    # v2 keeps its own, re-estimated model for v3; v1's is left as it was.
    assert v2.hmm == "private/releases/v2/acoustic/hmm.pt"
    assert (media / v2.hmm).read_bytes() != (media / release.hmm).read_bytes()
    espeak = aligner["espeak"]
    if espeak["measured"] == "build":  # measured on v2's own model, not quoted from v1's
        assert f"{100 * espeak['within_20ms']:.1f} % of their {espeak['boundaries']} phone boundaries" in readme

    # Built again under its name, v2 starts from v1's model again and gives the same bytes, its HMM included.
    files, hmm = dict(v2.files.values_list("path", "sha256")), (media / v2.hmm).read_bytes()
    Release.objects.filter(pk=v2.pk).update(status=ReleaseStatus.FAILED)
    again = release_build(release_id=release_create(version="v2").pk)
    assert again.status == ReleaseStatus.READY, again.error
    assert dict(again.files.values_list("path", "sha256")) == files and (media / again.hmm).read_bytes() == hmm


def test_a_damaged_stored_hmm_gives_way_to_a_flat_start_with_the_reason(release, settings, caplog):
    stored = Path(settings.MEDIA_ROOT) / release.hmm
    stored.write_bytes(stored.read_bytes()[:400])  # an interrupted copy
    with caplog.at_level(logging.WARNING, logger="benchmark.releases.build"):
        v2 = build("v2")
    aligner, readme = _aligner(settings, v2)
    assert aligner["method"] == "hmm-flat-start" and aligner["initialised_from"] is None
    assert aligner["em_passes"] == 15
    assert aligner["fallback"].startswith("the HMM of release v1 was not used: unreadable")
    assert "release v2: the HMM of release v1 was not used: unreadable" in caplog.text
    assert "(The HMM of release v1 was not used: unreadable" in readme and "trained from a flat start" in readme
    assert (Path(settings.MEDIA_ROOT) / v2.hmm).is_file()  # its own sound model, for v3


def test_without_its_own_espeak_measure_the_datasheet_quotes_the_recipes_figure_as_not_this_models():
    from benchmark.releases.datasheet import _alignment_section
    from training.ml.release_align import OFFLINE_ESPEAK

    aligner = {"clips": 30, "by_hmm": 30, "supplied": 0, "method": "hmm-from-model", "model": "monophone HMM",
               "initialised_from": {"kind": "training_run", "name": "7"}, "em_passes": 2,
               "train_clips": 20}  # fmt: skip
    offline = {"measured": "offline", "why": "libespeak-ng is not installed where it was built", **OFFLINE_ESPEAK}
    text = "\n".join(_alignment_section({"alignment": {**aligner, "espeak": offline}}))
    assert "the HMM of training run 7, re-estimated here (2 Viterbi EM passes over 20 of this release's" in text
    assert "could not measure its model on espeak-ng speech (libespeak-ng is not installed" in text
    assert "For reference only, and not this model's: the flat-start recipe" in text and "91.2 %" in text
    assert "**" not in text  # no figure is put forward as this model's
    measured = {"measured": "build", "readings": 20, "boundaries": 900, "unscored": 0, "within_20ms": 0.734,
                "mean_abs_error_ms": 21.5}  # fmt: skip
    text = "\n".join(_alignment_section({"alignment": {**aligner, "espeak": measured}}))
    assert "this model (not trained on them) puts **73.4 % of their 900 phone boundaries within 20 ms**" in text
    assert "91.2" not in text


def test_a_release_aligned_on_another_number_of_threads_has_the_same_bytes(release, settings, monkeypatch):
    """The build aligns on a thread per core (features per clip, EM and Viterbi per batch, combined in order): on
    another count every file, the .PHN and .WRD included, and the saved HMM are the same bytes."""
    from benchmark.releases import build as builder

    media = Path(settings.MEDIA_ROOT)
    files, hmm = dict(release.files.values_list("path", "sha256")), (media / release.hmm).read_bytes()
    assert any(path.endswith(".PHN") for path in files)
    monkeypatch.setattr(builder, "BUILD_WORKERS", 1 if builder.BUILD_WORKERS > 1 else 3)
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    again = release_build(release_id=release_create(version=release.version).pk)
    assert again.status == ReleaseStatus.READY, again.error
    assert dict(again.files.values_list("path", "sha256")) == files and (media / again.hmm).read_bytes() == hmm
