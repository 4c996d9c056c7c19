"""The stages the CLI runs: prepare, align, train (labels or mimic), evaluate, export; all under work_dir."""

from __future__ import annotations

import contextlib
import fcntl
import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.ml.align import align_corpus, load_alignment, save_alignment, state_prior, write_phn
from training.ml.config import Config, apply_overrides, save_config
from training.ml.data import FrameStore, prepare_corpus
from training.ml.decode import Decoder, PhoneBigram, collapse, to_phones, transition_logs, tune
from training.ml.export import WaveformModel, export_onnx
from training.ml.features import Normaliser
from training.ml.lexicon import STATES_PER_PHONE
from training.ml.models import build_model, count_parameters, depth_of
from training.ml.score import corpus_counts
from training.ml.train import CHECKPOINT, Progress, fit, frame_accuracy, load_model, resolve_device, utterance_log_probs

ALIGNMENT = "alignment.pt"


@contextlib.contextmanager
def _work_dir_lock(config: Config) -> Iterator[None]:
    """One process at a time builds a work_dir's shared store and alignment; the others wait, then read them."""
    folder = Path(config.work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare(config: Config) -> FrameStore:
    with _work_dir_lock(config):
        return prepare_corpus(config, progress=config.train.progress)


def align(
    config: Config, callback: Progress | None = None, store: FrameStore | None = None
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    path = Path(config.work_dir) / ALIGNMENT
    with _work_dir_lock(config):
        if path.exists():
            return load_alignment(path)
    store = store if store is not None else prepare(config)
    with _work_dir_lock(config):
        if path.exists():  # another process aligned while this one waited
            return load_alignment(path)
        torch.manual_seed(config.train.seed)  # the aligner's classifiers: the same labels whatever ran before
        labels, history = align_corpus(store, config, progress=config.train.progress, callback=callback)
        save_alignment(path, labels, history)
        shift, length = config.features.frame_shift, config.features.frame_length
        write_phn(store, labels, Path(config.work_dir) / "phn", shift, length)
    return labels, history


def _load(config: Config, device: torch.device, callback: Progress | None = None) -> tuple[FrameStore, torch.Tensor]:
    store = prepare(config)
    labels, _ = align(config, callback, store)
    return store.to(device), labels.to(device)


def train(
    config: Config, run_dir: str | Path, stop_after: int | None = None, callback: Progress | None = None
) -> list[dict[str, float]]:
    """A teacher or student on labels, or a mimic of config.train.teacher; resumes from run_dir."""
    run_dir = Path(run_dir)
    if config.model.kind == "ensemble":
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.json")
        return []
    device = resolve_device(config.train.device)
    store, labels = _load(config, device, callback)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, store.input_dim, store.context)
    teacher = load_model(config.train.teacher, device)[0] if config.train.objective.startswith("mimic") else None
    train_pos = store.frame_positions(store.utterance_ids("train"))
    dev_pos = store.frame_positions(store.utterance_ids("dev"))
    return fit(
        model,
        store,
        train_pos,
        config,
        run_dir,
        labels=labels,
        teacher=teacher,
        dev_positions=dev_pos,
        stop_after=stop_after,
        desc=run_dir.name,
        callback=callback,
    )


def _decoder(store: FrameStore, labels: torch.Tensor, config: Config) -> Decoder:
    train_ids = store.utterance_ids("train") or store.utterance_ids()
    sequences = [collapse(labels[int(store.offsets[u]) : int(store.offsets[u + 1])].cpu().numpy()) for u in train_ids]
    train_labels = labels[store.frame_positions(train_ids)].cpu()
    log_loop, log_next = transition_logs(train_labels, config.decode.self_loop)
    return Decoder(PhoneBigram.estimate(sequences), torch.log(state_prior(train_labels)), log_loop, log_next)


def _references(store: FrameStore, utt_ids: list[int]) -> list[list[str]]:
    return [[p for word in store.utterances[u].words for p in word] for u in utt_ids]


def evaluate(
    run_dir: str | Path,
    splits: tuple[str, ...] = ("test", "hidden"),
    callback: Progress | None = None,
    decode: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Frame accuracy and PER; decoding weights tuned on dev only, then applied to the reported splits.
    ``decode``: settings of the decoding grid to use instead of the run's (e.g. the same grid for every model)."""
    run_dir = Path(run_dir)
    device = resolve_device("auto")
    model, config = load_model(run_dir, device)
    apply_overrides(config, {"decode": decode or {}})
    store, labels = _load(config, device)
    decoder = _decoder(store, labels, config)
    dec = config.decode
    dev_ids = store.utterance_ids("dev")
    dev_refs = _references(store, dev_ids)
    dev_lp = utterance_log_probs(model, store, dev_ids)
    grid = len(dec.acoustic_scales) * len(dec.prior_scales) * len(dec.lm_weights) * len(dec.insertion_penalties)
    tried = 0

    def dev_per_of(hyps: list[list[int]]) -> float:
        nonlocal tried
        tried += 1
        if callback:  # a decoding grid on a large dev split takes minutes: report, so the run looks alive
            callback({"event": "decode", "stage": "evaluate", "point": tried, "points": grid})
        return corpus_counts(dev_refs, [to_phones(h) for h in hyps]).per

    weights, dev_per, _ = tune(
        decoder,
        dev_lp,
        dev_per_of,
        dec.acoustic_scales,
        dec.prior_scales,
        dec.lm_weights,
        dec.insertion_penalties,
    )
    metrics: dict[str, Any] = {
        "run": run_dir.name,
        "kind": config.model.kind,
        "objective": config.train.objective,
        "parameters": count_parameters(model),
        "depth": depth_of(model),
        "weights": weights.__dict__,
        "dev": {"per": dev_per, "frame_acc": _frame_acc(model, store, dev_ids, labels)},
        "hardware": {
            "device": str(device),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
    }
    for split in splits:
        ids = store.utterance_ids(split)
        if not ids:
            continue
        hyps = decoder.decode(utterance_log_probs(model, store, ids), weights)
        counts = corpus_counts(_references(store, ids), [to_phones(h) for h in hyps])
        metrics[split] = {**counts.as_dict(), "frame_acc": _frame_acc(model, store, ids, labels)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _frame_acc(model: torch.nn.Module, store: FrameStore, ids: list[int], labels: torch.Tensor) -> float:
    return frame_accuracy(model, store, store.frame_positions(ids), labels)


def phone_frame_accuracy(model: torch.nn.Module, store: FrameStore, ids: list[int], labels: torch.Tensor) -> float:
    hits, total = 0, 0
    for u, lp in zip(ids, utterance_log_probs(model, store, ids), strict=True):
        ref = labels[int(store.offsets[u]) : int(store.offsets[u + 1])].cpu() // STATES_PER_PHONE
        hits += int((lp.argmax(1) // STATES_PER_PHONE == ref).sum())
        total += len(ref)
    return hits / max(1, total)


def _normaliser(run_dir: Path, config: Config) -> Normaliser:
    """The training-set statistics a run's checkpoint carries (an ensemble's: its first member's, the same)."""
    if config.model.kind == "ensemble":
        member = Path(config.model.members[0])
        return _normaliser(member, Config.from_dict(json.loads((member / "config.json").read_text())))
    saved = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)["normaliser"]
    return Normaliser(saved["mean"], saved["std"])


def export(run_dir: str | Path, out: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    model, config = load_model(run_dir, "cpu")
    wrapper = WaveformModel(model, _normaliser(run_dir, config), config.features)
    return export_onnx(wrapper, out or run_dir / "model.onnx")


def results_table(run_dirs: list[str | Path], split: str = "test") -> str:
    """Markdown: one row per evaluated run."""
    rows = [
        "| run | model | objective | params | depth | frame acc | PER | S | D | I |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in run_dirs:
        path = Path(run) / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        s = m.get(split, {})
        rows.append(
            f"| {m['run']} | {m['kind']} | {m['objective']} | {m['parameters']:,} | {m['depth']} | "
            f"{100 * s.get('frame_acc', np.nan):.1f} | {100 * s.get('per', np.nan):.1f} | {s.get('sub', '')} | "
            f"{s.get('del', '')} | {s.get('ins', '')} |"
        )
    return "\n".join(rows)
