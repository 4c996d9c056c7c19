"""The BiLSTM teacher and the BiLSTM-CTC peer on the tiny espeak-ng corpus, and the seeded finding over rows."""

import dataclasses
import json

import pytest
import torch

from training.ml import finding, pipeline
from training.ml.config import Config
from training.ml.train import load_model


def _config(tiny, **model) -> Config:
    config = dataclasses.replace(tiny["config"])
    config.model = dataclasses.replace(
        config.model, **({"kind": "blstm", "depth": 2, "width": 48, "dropout": 0.0} | model)
    )
    config.train = dataclasses.replace(config.train, epochs=5, sequence_batch=8, lr=1e-2, lr_decay=0.9)
    return config


@pytest.fixture(scope="module")
def blstm(tiny):
    run = tiny["dir"] / "runs" / "blstm"
    history = pipeline.train(_config(tiny), run)
    return {"run": run, "history": history, "metrics": pipeline.evaluate(run, splits=("test",))}


def test_blstm_teacher_decodes_and_feeds_a_mimic(tiny, blstm):
    """The BiLSTM learns the frame targets, its logits go through the HMM/bigram decoder, the cached teacher
    logits a mimic regresses are its whole-utterance outputs (not frames scored one batch at a time), and the
    mimic, a frame-wise shallow net, learns from them."""
    print("blstm", blstm["history"], blstm["metrics"]["test"]["per"])
    assert blstm["history"][-1]["loss"] < 0.5 * blstm["history"][0]["loss"]
    assert blstm["metrics"]["test"]["frame_acc"] > 0.5 and blstm["metrics"]["test"]["per"] < 0.5

    config = dataclasses.replace(tiny["config"])
    config.model = dataclasses.replace(config.model, kind="snn", width=256, bottleneck=32, dropout=0.0)
    config.train = dataclasses.replace(config.train, objective="mimic_soft", teacher=str(blstm["run"]), epochs=2)
    store = tiny["store"]
    train_ids = store.utterance_ids("train")
    targets, _ = pipeline.teacher_targets(config, store, store.frame_positions(train_ids), torch.device("cpu"))
    teacher = load_model(blstm["run"])[0]
    with torch.no_grad():  # each utterance alone, spliced, as evaluate and the ONNX graph feed it
        alone = torch.cat([teacher(store.utterance_inputs(u)) for u in train_ids])
    assert torch.allclose(targets, alone, atol=1e-5)  # padding in the cache's batches changed nothing

    history = pipeline.train(config, tiny["dir"] / "runs" / "blstm_mimic")
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["dev_frame_acc"] > 0.3


def test_blstm_exports_to_onnx(tiny, blstm):
    pytest.importorskip("onnxruntime")
    from training.ml.export import onnx_log_probs

    path = pipeline.export(blstm["run"], tiny["dir"] / "blstm.onnx")
    wave = torch.from_numpy(tiny["corpus"].waves[-1])[None]
    model, config = load_model(blstm["run"])
    from training.ml.export import WaveformModel

    with torch.no_grad():
        expected = WaveformModel(model, tiny["store"].normaliser, config.features)(wave)
    got = onnx_log_probs(path, wave)
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-4


def test_ctc_peer_trains_and_scores_like_the_leaderboard(tiny):
    """The CTC peer trains on the canonical phones alone and is scored greedily by the same PER scorer, through
    ``evaluate`` and through ``evaluate --manifest`` (the same figure from the audio)."""
    from tests.training.test_train import _release_manifest

    config = _config(tiny, depth=1, width=64)
    # CTC first learns to emit only blanks (PER exactly 100 %); small batches leave that plateau in ~8 epochs here.
    config.train = dataclasses.replace(
        config.train, objective="ctc", epochs=14, sequence_batch=4, lr=1e-2, lr_decay=1.0
    )
    run = tiny["dir"] / "runs" / "ctc"
    history = pipeline.train(config, run)
    metrics = pipeline.evaluate(run, splits=("test",))
    print("ctc", history, metrics["test"])
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert metrics["decoder"] == "greedy_ctc" and metrics["test"]["per"] < 0.8
    manifest = _release_manifest(tiny, tiny["dir"] / "ctc-outside", "test")
    scores = pipeline.score_manifest([run], manifest, split="test")
    assert scores["runs"][0]["per"] == pytest.approx(metrics["test"]["per"], abs=1e-9)


def test_finding_aggregates_seeds_and_reuses_finished_runs(tiny):
    base = dataclasses.replace(tiny["config"])
    base.train = dataclasses.replace(base.train, epochs=1)
    base.model = dataclasses.replace(base.model, bottleneck=16)
    cells = finding.plan(base, ["snn"], [64], 2, {})
    assert [c.row for c in cells] == ["snn", "snn"] and cells[0].run_dir != cells[1].run_dir
    finding.run(cells, log=lambda _: None)
    summary = finding.summarise(cells, resamples=200)
    (row,) = summary["rows"]
    assert row["seeds"] == [base.train.seed, base.train.seed + 1]
    assert row["mean"] == pytest.approx(sum(row["per"]) / 2)
    stamps = [(c.run_dir / "checkpoint.pt").stat().st_mtime_ns for c in cells]
    lines: list[str] = []
    finding.run(finding.plan(base, ["snn"], [64], 2, {}), log=lines.append)
    assert all("reused" in line for line in lines)
    assert stamps == [(c.run_dir / "checkpoint.pt").stat().st_mtime_ns for c in cells]
    assert json.loads((cells[0].run_dir / "config.json").read_text())["align"]["seed"] == base.train.seed


def test_blstm_recipes_make_the_issue_sizes_and_refuse_another_objective():
    from training.recipes import RecipeError, recipe_config

    base = "training/ml/configs/small_cpu.json"
    teacher = recipe_config("teacher-blstm", base=base)
    peer = recipe_config("blstm-ctc", base=base)
    assert (teacher.model.kind, teacher.model.depth, teacher.model.width, teacher.train.objective) == (
        "blstm",
        3,
        256,
        "labels",
    )
    assert (peer.model.kind, peer.train.objective) == ("blstm", "ctc")
    # Small batches, so that the peer leaves CTC's all-blank plateau within a release's epochs (it did not at 16).
    assert peer.train.sequence_batch == 4 and teacher.train.sequence_batch == 16
    with pytest.raises(RecipeError, match="trains on ctc"):
        recipe_config("blstm-ctc", base=base, overrides={"train.objective": "labels"})


def test_the_platform_submits_a_ctc_peer_for_greedy_ctc_and_names_a_blstm():
    from training.models import TrainingRecipe, TrainingRun
    from training.recipes import recipe_config
    from training.services.execution import baseline_decoder, baseline_name

    base = "training/ml/configs/small_cpu.json"
    peer, teacher = (dataclasses.asdict(recipe_config(r, base=base)) for r in ("blstm-ctc", "teacher-blstm"))
    assert baseline_decoder(peer) == "greedy_ctc" and baseline_decoder(teacher) == "hmm_bigram"
    run = TrainingRun(pk=7, recipe=TrainingRecipe.BLSTM_CTC, config=peer)
    assert baseline_name(run) == "BiLSTM 3x256 CTC peer · run 7"
