"""The mimic's transfer set: speed-perturbed copies of the train split, labelled by the teacher alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile
import torch

from tests.training.test_run_config import _with, put_store, small_config
from training.ml import finding, pipeline
from training.ml.config import Config, InvalidConfig, apply_overrides
from training.ml.data import FrameStore, compute_features, store_dir
from training.ml.train import load_model, teacher_logits
from training.ml.transfer import SPLIT, speed_perturb, with_transfer

RATE = 16000


def _peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / RATE)[spectrum.argmax()])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_tempo_and_pitch_together(factor):
    tone = np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE).astype(np.float32)
    out = speed_perturb(tone, factor, RATE)
    assert out.dtype == np.float32
    assert abs(len(out) - RATE / factor) <= 2
    assert _peak_hz(out) == pytest.approx(1000 * factor, abs=2)


def test_a_speed_of_one_is_the_wave_itself_and_a_speed_must_be_positive():
    wave = np.ones(10, np.float32)
    assert speed_perturb(wave, 1.0, RATE) is wave
    with pytest.raises(ValueError, match="positive"):
        speed_perturb(wave, 0.0, RATE)


@pytest.fixture
def on_disk(tiny, tmp_path):
    """The tiny corpus's store with every utterance's audio written to a file (its synthetic waves live in memory),
    under a config of its own, and a teacher trained on it."""
    config = small_config(tiny, tmp_path / "work")
    store = tiny["store"]
    utterances = []
    for u, wave in zip(store.utterances, tiny["corpus"].waves, strict=True):
        path = tmp_path / "audio" / f"{u.utt_id}.flac"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, wave, RATE, subtype="PCM_16")
        utterances.append(dataclasses.replace(u, audio=str(path)))
    put_store(FrameStore(utterances, store.frames, store.offsets, store.normaliser, store.context), config)
    pipeline.align(config)
    teacher = tmp_path / "teacher"
    pipeline.train(config, teacher)
    return config, teacher


def test_a_mimic_learns_the_teachers_logits_on_speed_perturbed_copies_of_the_train_split(on_disk):
    config, teacher_run = on_disk
    mimic = _with(
        config,
        **{"train.objective": "mimic_l2", "train.teacher": str(teacher_run), "train.transfer_speeds": "[0.9, 1.1]"},
    )
    mimic.model = dataclasses.replace(mimic.model, kind="snn", width=48)
    history = pipeline.train(mimic, config.work_dir + "/runs/mimic")
    assert len(history) == 1

    base = pipeline.prepare(config)
    train_ids = base.utterance_ids("train")
    store = with_transfer(mimic, pipeline.prepare(config), progress=False)
    # The base store's frames keep their positions; each factor adds one copy of every training utterance.
    assert torch.equal(store.frames[: len(base.frames)], base.frames)
    assert store.utterances[: len(base.utterances)] == base.utterances
    copies = [store.utterances[u] for u in store.utterance_ids(SPLIT)]
    assert len(copies) == 2 * len(train_ids)
    assert {c.utt_id for c in copies} == {f"sp{f}-{base.utterances[u].utt_id}" for f in (0.9, 1.1) for u in train_ids}
    n_train = len(base.frame_positions(train_ids))
    n_slow = len(store.frame_positions(store.utterance_ids(SPLIT)[: len(train_ids)]))
    n_fast = len(store.frame_positions(store.utterance_ids(SPLIT)[len(train_ids) :]))
    assert n_slow == pytest.approx(n_train / 0.9, rel=0.02)
    assert n_fast == pytest.approx(n_train / 1.1, rel=0.02)

    # A copy's frames are the features of its resampled audio, under the base store's normaliser (not refitted).
    first = train_ids[0]
    wave, _ = soundfile.read(base.utterances[first].audio, dtype="float32")
    expected = base.normaliser(compute_features([speed_perturb(wave, 0.9, RATE)], config.features)[0])
    copy = store.utterance_ids(SPLIT)[0]
    assert torch.allclose(store.frames[store.offsets[copy] : store.offsets[copy + 1]], expected, atol=1e-5)

    # The teacher labelled the train frames and both copies once; those logits are the mimic's cached targets.
    cached = list((store_dir(config) / "teacher_logits").glob("*.pt"))
    assert len(cached) == 1
    targets = torch.load(cached[0], weights_only=True)["logits"]
    assert len(targets) == n_train + n_slow + n_fast
    teacher, _ = load_model(teacher_run)
    positions = store.frame_positions(train_ids + store.utterance_ids(SPLIT))
    assert torch.equal(targets, teacher_logits(teacher, store, positions))

    # The run evaluates on the base store's splits as any mimic does.
    scores = pipeline.evaluate(config.work_dir + "/runs/mimic")
    assert 0 < scores["test"]["per"] < 100


@pytest.mark.parametrize("objective", ["labels", "ctc"])
def test_a_run_without_a_teacher_refuses_a_transfer_set_before_any_work(objective, tmp_path):
    run = Config(work_dir=str(tmp_path))
    run.data.manifest = str(tmp_path / "absent.tsv")  # refused before the corpus is read
    apply_overrides(run, {"train.objective": objective, "train.transfer_speeds": "[0.9]"})
    with pytest.raises(InvalidConfig, match="transfer_speeds"):
        pipeline.train(run, tmp_path / "run")
    assert not (tmp_path / "features").exists()


@pytest.mark.parametrize(("speeds", "message"), [("[1.1, 1.1]", "repeats"), ("[0.9, 0]", "positive")])
def test_a_mimic_with_unusable_speeds_is_refused_before_any_work(speeds, message, tmp_path):
    run = Config(work_dir=str(tmp_path))
    run.data.manifest = str(tmp_path / "absent.tsv")
    apply_overrides(run, {"train.objective": "mimic_soft", "train.transfer_speeds": speeds})
    with pytest.raises(InvalidConfig, match=message):
        pipeline.train(run, tmp_path / "run")
    assert not (tmp_path / "features").exists()


def test_a_repeated_speed_is_refused(tiny):
    mimic = Config.from_dict(tiny["config"].to_dict())
    apply_overrides(mimic, {"train.objective": "mimic_l2", "train.transfer_speeds": "[1.1, 1.1]"})
    with pytest.raises(ValueError, match="repeats"):
        with_transfer(mimic, tiny["store"], progress=False)


@pytest.mark.parametrize(("row", "objective"), [("mimic_l2_sp", "mimic_l2"), ("mimic_soft_sp", "mimic_soft")])
def test_the_findings_transfer_rows_are_their_mimic_with_the_teachers_speed_perturbed_frames(row, objective, tiny):
    base = Config.from_dict(tiny["config"].to_dict())
    teacher, mimic = finding.plan(base, [row], [64], 1, {})
    assert (teacher.row, mimic.row) == ("teacher", row)
    assert mimic.config.train.objective == objective
    assert mimic.config.train.transfer_speeds == finding.TRANSFER_SPEEDS == [0.9, 1.1]
    assert mimic.config.train.teacher == str(teacher.run_dir)
    assert teacher.config.train.transfer_speeds == []
    # The same student as the plain mimic row (parameter-matched to the teacher), in a run directory of its own.
    _, plain = finding.plan(base, [objective], [64], 1, {})
    assert mimic.config.model == plain.config.model
    assert mimic.run_dir != plain.run_dir
