"""Every run is what its config says: artefacts keyed by their settings, checkpoints that carry their shape, resumes
that refuse other settings, no silent fallback for a missing split, float32 mimic targets computed once."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from training.ml import pipeline
from training.ml import train as train_module
from training.ml.config import Config, ConfigMismatch, InvalidConfig, apply_overrides, save_config
from training.ml.data import FrameStore, MissingSplit, build_store, store_dir
from training.ml.train import CHECKPOINT, load_model


def small_config(tiny, work_dir, **settings) -> Config:
    """The tiny corpus's config with an aligner and models that take a second or two on the CPU."""
    config = Config.from_dict(tiny["config"].to_dict())
    config.work_dir = str(work_dir)
    apply_overrides(
        config,
        {
            "align": {"rounds": 1, "hidden": 32, "layers": 1, "epochs": 1, "frames_per_epoch": 0},
            "model": {"kind": "dnn", "depth": 1, "width": 32, "dropout": 0.0, "bottleneck": 8},
            "train": {"epochs": 1, "batch_size": 256},
            "decode": {"prior_scales": [1.0], "lm_weights": [1.0], "insertion_penalties": [0.0]},
            **settings,
        },
    )
    return config


def put_store(store: FrameStore, config: Config) -> None:
    """The store prepare() would build for ``config``, from the synthetic corpus (it has no manifest to read)."""
    store_dir(config).mkdir(parents=True, exist_ok=True)
    store.save(store_dir(config) / "store.pt")


@pytest.fixture(scope="module")
def small(tiny, tmp_path_factory):
    config = small_config(tiny, tmp_path_factory.mktemp("small"))
    put_store(tiny["store"], config)
    pipeline.align(config)
    return config


def _with(config: Config, **dotted) -> Config:
    return apply_overrides(Config.from_dict(config.to_dict()), dotted)


# --- 1. artefacts keyed by exactly the settings they depend on --------------------------------------------------
def test_artefact_folders_are_keyed_by_exactly_the_settings_they_depend_on(tmp_path):
    manifest = tmp_path / "corpus" / "manifest.tsv"
    manifest.parent.mkdir()
    manifest.write_text("utt_id\tspeaker\taudio\ttext\n")
    base = Config(work_dir=str(tmp_path))
    base.data.manifest = str(manifest)
    store, alignment = store_dir(base), pipeline.alignment_dir(base)
    assert store.parent == tmp_path / "features" and alignment.parent == tmp_path / "alignments"

    # The demo config aligns 3 rounds, the release config 4: never one alignment for both.
    assert pipeline.alignment_dir(_with(base, **{"align.rounds": 3})) != alignment
    for setting, value in {
        "train.seed": 7,
        "features.context": 5,
        "align.hidden": 64,
        "align.settle": 0.1,
        "align.threads": 2,
    }.items():
        changed = _with(base, **{setting: value})
        assert pipeline.alignment_dir(changed) != alignment, setting
        assert store_dir(changed) == store, setting  # frames are stored unspliced and do not depend on the seed
    for setting, value in {"features.n_mels": 24, "features.window": "hann", "data.max_utterances": 5}.items():
        changed = _with(base, **{setting: value})
        assert store_dir(changed) != store and pipeline.alignment_dir(changed) != alignment, setting
    # What only the model or its training reads leaves the shared artefacts alone.
    for setting, value in {"train.lr": 0.01, "train.epochs": 2, "model.width": 64, "model.kind": "snn"}.items():
        changed = _with(base, **{setting: value})
        assert (store_dir(changed), pipeline.alignment_dir(changed)) == (store, alignment), setting
    # The manifest's content is part of the data: an edited corpus gets a fresh store.
    manifest.write_text("utt_id\tspeaker\taudio\ttext\nu1\ts1\tu1.flac\thello\n")
    assert store_dir(base) != store


def test_configs_with_different_align_rounds_never_share_an_alignment(tiny, small):
    two = _with(small, **{"align.rounds": 2, "align.settle": 0.0})
    labels_two, history_two = pipeline.align(two)
    labels_one, history_one = pipeline.align(small)
    rounds = [[record for record in history if "round" in record] for history in (history_one, history_two)]
    assert [len(r) for r in rounds] == [1, 2]  # the HMM's EM passes come first, without a round
    assert pipeline.alignment_dir(small) != pipeline.alignment_dir(two)
    assert (pipeline.alignment_dir(two) / "phn").is_dir()
    assert json.loads((pipeline.alignment_dir(two) / "key.json").read_text())["align"]["rounds"] == 2
    assert not torch.equal(labels_one, labels_two)


def test_the_aligner_runs_on_its_configured_threads_whatever_the_process_runs_on(tiny, tmp_path):
    """Its EM sums round differently on each thread count (8 % of the shared half's frames moved between 1 and 2
    threads), so the count is a setting of the alignment, not of the machine that happens to run it."""
    config = small_config(tiny, tmp_path, align={"rounds": 1, "hidden": 32, "layers": 1, "epochs": 1, "threads": 2})
    put_store(tiny["store"], config)
    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        pipeline.align(config, callback=lambda _event: seen.append(torch.get_num_threads()))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {2}
    assert after == 3  # the process gets its own count back
    assert json.loads((pipeline.alignment_dir(config) / "key.json").read_text())["align"]["threads"] == 2
    with pytest.raises(InvalidConfig, match=r"align\.threads"):
        pipeline.align(_with(config, **{"align.threads": 0}))


# --- 2. checkpoints carry the model's shape: every documented shape trains, evaluates and exports -------------------
@pytest.mark.parametrize(
    "overrides",
    [
        {"features.context": 5},
        {
            "features.context": 5,
            "features.n_mels": 24,
            "model.kind": "cnn",
            "model.conv_channels": 8,
            "model.conv_kernel": 4,
        },
        {"features.context": 3, "model.kind": "snn", "model.bottleneck": 0},
    ],
    ids=["dnn-context5", "cnn-context5-24mels", "snn-context3-no-bottleneck"],
)
def test_a_run_trains_evaluates_and_exports_with_any_documented_shape(tiny, small, overrides):
    pytest.importorskip("onnxruntime")
    from training.ml.export import WaveformModel, onnx_log_probs

    config = _with(small, **overrides)
    if config.features.n_mels != small.features.n_mels:
        put_store(build_store(tiny["corpus"].utterances, tiny["corpus"].waves, config), config)
    else:
        assert (store_dir(config) / "store.pt").exists()  # the same frames, spliced differently
    run = store_dir(small).parent.parent / "runs" / "-".join(f"{k}={v}" for k, v in overrides.items())
    pipeline.train(config, run)

    state = torch.load(run / CHECKPOINT, weights_only=True)
    frame_dim = 3 * (config.features.n_mels + 1)
    assert state["input_dim"] == state["shape"]["input_dim"] == (2 * config.features.context + 1) * frame_dim
    assert state["shape"]["kind"] == config.model.kind and state["shape"]["context"] == config.features.context
    model, _ = load_model(run)
    metrics = pipeline.evaluate(run, splits=("test",))
    assert 0 < metrics["test"]["per"] <= 1.5 and metrics["parameters"] == sum(p.numel() for p in model.parameters())

    path = pipeline.export(run)
    saved = torch.load(run / CHECKPOINT, weights_only=True)["normaliser"]
    from training.ml.features import Normaliser

    wrapper = WaveformModel(model, Normaliser(saved["mean"], saved["std"]), config.features).eval()
    wave = torch.from_numpy(tiny["corpus"].waves[-1])[None]
    with torch.no_grad():
        expected = wrapper(wave)
    got = onnx_log_probs(path, wave)
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-3


def test_a_checkpoint_without_a_shape_loads_from_its_config_context(tiny, small):
    config = _with(small, **{"features.context": 5})
    run = store_dir(small).parent.parent / "runs" / "old-checkpoint"
    pipeline.train(config, run)
    state = torch.load(run / CHECKPOINT, weights_only=True)
    del state["shape"], state["input_dim"]
    torch.save(state, run / CHECKPOINT)
    model, _ = load_model(run)
    assert model.hidden[0].in_features == 11 * 123


# --- 2b. a resume refuses other settings ----------------------------------------------------------------------
def test_resume_refuses_a_config_that_differs_from_the_checkpoints(small, tmp_path, capsys):
    config = _with(small, **{"train.epochs": 2})
    run = tmp_path / "run"
    pipeline.train(config, run, stop_after=1)
    before = (run / "config.json").read_text()

    with pytest.raises(ConfigMismatch, match=r"train\.lr: 0\.002 -> 0\.01"):
        pipeline.train(_with(config, **{"train.lr": 0.01}), run)
    with pytest.raises(ConfigMismatch, match=r"model\.width: 32 -> 48"):
        pipeline.train(_with(config, **{"model.width": 48}), run)
    assert (run / "config.json").read_text() == before  # the refused config did not replace the run's own

    # Where a run executes is not what it computes: a resume under another device setting goes on.
    moved = _with(config, **{"train.device": "auto"})
    assert [r["epoch"] for r in pipeline.train(moved, run)] == [1, 2]

    # The command line says it in a sentence and exits non-zero.
    from training.ml.__main__ import main

    save_config(config, tmp_path / "run.json")
    assert main(["train", "--config", str(tmp_path / "run.json"), "--run", str(run)]) == 0
    code = main(["train", "--config", str(tmp_path / "run.json"), "--set", "train.batch_size=64", "--run", str(run)])
    assert code == 1 and "train.batch_size: 256 -> 64" in capsys.readouterr().err


# --- 3. a missing split is an error, never a fallback to every utterance ---------------------------------------
def _relabelled(store: FrameStore, old: str, new: str) -> FrameStore:
    utterances = [dataclasses.replace(u, split=new if u.split == old else u.split) for u in store.utterances]
    return FrameStore(utterances, store.frames, store.offsets, store.normaliser, store.context)


def test_a_corpus_without_a_train_split_is_refused_with_a_sentence(tiny):
    corpus = tiny["corpus"]
    utterances = [dataclasses.replace(u, split="test" if u.split == "train" else u.split) for u in corpus.utterances]
    with pytest.raises(MissingSplit, match=r"no train split .*normaliser"):
        build_store(utterances, corpus.waves, tiny["config"])


@pytest.mark.parametrize("split", ["train", "dev"])
def test_every_stage_refuses_a_store_without_a_train_or_dev_split(tiny, tmp_path, split):
    config = small_config(tiny, tmp_path)
    put_store(_relabelled(tiny["store"], split, "test"), config)
    for stage in (pipeline.prepare, pipeline.align, lambda c: pipeline.train(c, tmp_path / "run")):
        with pytest.raises(MissingSplit, match=f"no {split} split"):
            stage(config)
    assert not (tmp_path / "alignments").exists() and not (tmp_path / "run").exists()


def test_the_decoder_refuses_a_store_without_a_train_split(tiny):
    store = _relabelled(tiny["store"], "train", "test")
    with pytest.raises(MissingSplit, match=r"no train split .*bigram"):
        pipeline._decoder(store, tiny["labels"], tiny["config"])


# --- 4. mimic targets: float32 teacher logits, computed once per teacher -------------------------------------------
def test_mimic_targets_are_float32_teacher_logits_computed_once_per_teacher(tiny, small, monkeypatch):
    work = store_dir(small).parent.parent
    teacher_run = work / "runs" / "mimic-teacher"
    pipeline.train(small, teacher_run)

    # CUDA's bf16 autocast, reproduced on the CPU: the training step runs under it, the targets must not.
    monkeypatch.setattr(train_module, "autocast", lambda device, enabled: torch.autocast("cpu", dtype=torch.bfloat16))
    seen: list[torch.Tensor] = []
    loss = train_module.objective_loss

    def spy(logits, target, *args):
        seen.append(target)
        return loss(logits, target, *args)

    monkeypatch.setattr(train_module, "objective_loss", spy)
    rows = []

    def counting_load_model(run_dir, device="cpu"):
        model, config = load_model(run_dir, device)
        model.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
        return model, config

    monkeypatch.setattr(pipeline, "load_model", counting_load_model)
    mimic = _with(
        small,
        **{
            "train.objective": "mimic_l2",
            "train.teacher": str(teacher_run),
            "train.epochs": 2,
            "train.frames_per_epoch": 1024,  # bf16 matmuls are slow on a CPU without bf16 units
        },
    )
    mimic.model = dataclasses.replace(mimic.model, kind="snn", width=48)
    pipeline.train(mimic, work / "runs" / "mimic-a", stop_after=1)
    pipeline.train(mimic, work / "runs" / "mimic-a")

    store = pipeline.prepare(small)
    n_train = len(store.frame_positions(store.utterance_ids("train")))
    assert sum(rows) == n_train  # the teacher labelled each training frame once, for both epochs and the resume
    assert seen and all(t.dtype == torch.float32 for t in seen)
    assert any(bool((t.bfloat16().float() != t).any()) for t in seen)  # not rounded through bf16
    teacher, _ = load_model(teacher_run)
    expected = train_module.teacher_logits(teacher, store, store.frame_positions(store.utterance_ids("train")))
    cached = list((store_dir(small) / "teacher_logits").glob("*.pt"))
    assert len(cached) == 1
    assert torch.equal(torch.load(cached[0], weights_only=True)["logits"], expected)

    # A second student of the same teacher reads the cache: no teacher pass at all.
    rows.clear()
    pipeline.train(_with(mimic, **{"train.objective": "mimic_soft"}), work / "runs" / "mimic-b")
    assert rows == []

    # A resume with a teacher whose weights changed is another run: refused.
    pipeline.train(_with(mimic, **{"train.epochs": 3}), work / "runs" / "mimic-c", stop_after=1)
    state = torch.load(teacher_run / CHECKPOINT, weights_only=True)
    state["model"]["output.bias"] += 1.0
    torch.save(state, teacher_run / CHECKPOINT)
    with pytest.raises(ConfigMismatch, match="teacher checkpoint"):
        pipeline.train(_with(mimic, **{"train.epochs": 3}), work / "runs" / "mimic-c")


def test_a_mimic_refuses_a_teacher_trained_on_other_features(small, tmp_path):
    teacher_run = tmp_path / "teacher"
    pipeline.train(small, teacher_run)
    mimic = _with(small, **{"train.objective": "mimic_l2", "train.teacher": str(teacher_run), "features.context": 5})
    with pytest.raises(ConfigMismatch, match="other features"):
        pipeline.train(mimic, tmp_path / "mimic")


# --- 5. checkpoints hold tensors and plain data: loaded with weights_only=True ---------------------------------------
def test_checkpoints_are_loaded_with_weights_only(small, tmp_path, monkeypatch):
    calls = []
    real = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    config = _with(small, **{"train.epochs": 2})
    run = tmp_path / "run"
    pipeline.train(config, run, stop_after=1)
    pipeline.train(config, run)  # the resume
    pipeline.export(run, tmp_path / "model.onnx")  # load_model and the stored normaliser
    assert len(calls) >= 4 and all(weights_only is True for weights_only in calls), calls
