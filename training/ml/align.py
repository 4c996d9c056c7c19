"""Forced alignment of canonical phones to frames: 3 states per phone, optional silence between words and at the
ends, from a monophone HMM's alignment (hmm_align.py) or a flat start (uniform segmentation) through rounds of
frame-classifier training and Viterbi realignment until the labels settle. Alignments are kept as frame labels
and written as TIMIT-style .phn files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from speech.lexicon import N_STATES, PHONE_INDEX, SILENCE_INDEX, STATES_PER_PHONE
from speech.phones import INVENTORY
from training.ml.config import Config
from training.ml.data import FrameStore, require_splits
from training.ml.models import DNN
from training.ml.train import Progress, fit, frame_accuracy, resolve_device, utterance_log_probs

NEG = -1e30
SAMPLE_RATE = 16000


def segments(words: list[list[str]], optional_silence: bool = True) -> tuple[list[int], list[bool]]:
    """Phone index and optional flag per segment: [sil?] word [sil?] word ... [sil?]."""
    phones, optional = [SILENCE_INDEX], [True]
    for word in words:
        for p in word:
            phones.append(PHONE_INDEX[p])
            optional.append(False)
        if optional_silence:
            phones.append(SILENCE_INDEX)
            optional.append(True)
    if not optional_silence:
        phones.append(SILENCE_INDEX)
        optional.append(True)
    return phones, optional


def chain_states(phones: list[int]) -> np.ndarray:
    return np.array([p * STATES_PER_PHONE + s for p in phones for s in range(STATES_PER_PHONE)], dtype=np.int64)


def flat_start(words: list[list[str]], n_frames: int) -> np.ndarray:
    """Uniform segmentation of sil + canonical phones + sil over the frames: state labels (T,)."""
    states = chain_states(segments(words, optional_silence=False)[0])
    index = np.minimum((np.arange(n_frames) * len(states)) // max(1, n_frames), len(states) - 1)
    return states[index]


def viterbi_align(scores: np.ndarray, words: list[list[str]], silence_penalty: float = 0.0) -> tuple[np.ndarray, float]:
    """Best state labels (T,) through the word graph for per-frame state scores (T, 120), and its score per frame."""
    phones, optional = segments(words)
    states = chain_states(phones)
    n, t_max = len(states), len(scores)
    mandatory = STATES_PER_PHONE * sum(not o for o in optional)
    if t_max < mandatory:
        return flat_start(words, t_max), float("nan")
    first = np.arange(0, n, STATES_PER_PHONE)
    entry_penalty = np.zeros(n)
    entry_penalty[first[np.array(optional)]] = silence_penalty
    skip_ok = np.zeros(n, dtype=bool)  # first state of a segment whose predecessor segment is optional
    skip_ok[first[1:][np.array(optional[:-1])]] = True
    skip_ok[:4] = False
    emit = scores[:, states]
    delta = np.full(n, NEG)
    delta[0] = emit[0, 0] + entry_penalty[0]
    if optional[0]:
        delta[STATES_PER_PHONE] = emit[0, STATES_PER_PHONE]
    back = np.zeros((t_max, n), dtype=np.int8)
    skip_add = np.where(skip_ok, 0.0, NEG)
    padded = np.full(n + 4, NEG)  # delta behind four dummy states, so the shifted views need no copies
    for t in range(1, t_max):
        padded[4:] = delta
        from_prev = padded[3:-1] + entry_penalty
        from_skip = padded[:-4] + skip_add
        choice = (from_prev > delta).astype(np.int8)
        best = np.maximum(delta, from_prev)
        skip = from_skip > best
        choice[skip] = 2
        back[t] = choice
        delta = np.maximum(best, from_skip) + emit[t]
    ends = [n - 1] + ([n - 1 - STATES_PER_PHONE] if optional[-1] else [])
    state = max(ends, key=lambda j: delta[j])
    score = float(delta[state]) / t_max
    path = np.empty(t_max, dtype=np.int64)
    for t in range(t_max - 1, -1, -1):
        path[t] = state
        state -= (0, 1, 4)[back[t, state]]
    return states[path], score


def state_prior(labels: torch.Tensor, floor: float = 1.0) -> torch.Tensor:
    counts = torch.bincount(labels.long().cpu(), minlength=N_STATES).double() + floor
    return (counts / counts.sum()).float()


def align_round_model(
    store: FrameStore, labels: torch.Tensor, config: Config, seed: int, callback: Progress | None = None
) -> torch.nn.Module:
    ac = config.align
    cfg = dataclasses.replace(
        config,
        train=dataclasses.replace(
            config.train,
            objective="labels",
            epochs=ac.epochs,
            frames_per_epoch=ac.frames_per_epoch,
            seed=seed,
            lr_decay=0.5,
        ),
    )
    model = DNN(store.input_dim, ac.layers, ac.hidden, dropout=0.1)
    train = store.frame_positions(store.utterance_ids("train"))
    fit(model, store, train, cfg, labels=labels, desc="aligner", callback=callback)
    return model


def realign(
    store: FrameStore, model: torch.nn.Module, prior: torch.Tensor, config: Config
) -> tuple[torch.Tensor, float]:
    utt_ids = list(range(len(store.utterances)))
    labels = torch.empty(len(store.frames), dtype=torch.long)
    total = []
    for u, log_probs in zip(utt_ids, utterance_log_probs(model, store, utt_ids), strict=True):
        scores = (log_probs - torch.log(prior)).numpy().astype(np.float64)
        path, score = viterbi_align(scores, store.utterances[u].words, config.align.silence_penalty)
        labels[int(store.offsets[u]) : int(store.offsets[u + 1])] = torch.from_numpy(path)
        if np.isfinite(score):
            total.append(score)
    return labels, float(np.mean(total)) if total else float("nan")


def flat_start_labels(store: FrameStore) -> torch.Tensor:
    lengths = (store.offsets[1:] - store.offsets[:-1]).tolist()
    return torch.from_numpy(
        np.concatenate([flat_start(u.words, n) for u, n in zip(store.utterances, lengths, strict=True)])
    )


def align_corpus(
    store: FrameStore,
    config: Config,
    progress: bool = True,
    callback: Progress | None = None,
    hmm_path: str | Path | None = None,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """A start (align.method: "hmm", the monophone HMM of hmm_align; "mlp", the flat start), then rounds of (train
    classifier, Viterbi realign) until fewer than `settle` of the frames change phone. The classifier trains on the
    train split only (a store without one is refused, never aligned on its test utterances' labels). With
    ``hmm_path``, the "hmm" start's trained HMM is saved there (hmm_align.save_hmm), for a release build to
    start from."""
    require_splits(store, ("train",))
    history: list[dict[str, float]] = []
    if config.align.method == "hmm":
        from training.ml.hmm_align import HmmSettings, align_store

        def report(record: dict[str, float]) -> None:
            if callback:
                callback({"event": "hmm", "stage": "aligner", **record})
            if progress:
                print("hmm: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items()))

        settings = HmmSettings(stages=tuple(config.align.hmm_stages))
        start, hmm_history = align_store(store, settings, report=report, save_to=hmm_path, features=config.features)
        history += hmm_history  # records with "mixtures": the HMM's EM passes, before the MLP rounds
    elif config.align.method == "mlp":
        start = flat_start_labels(store)
    else:
        raise ValueError(f"align.method is 'hmm' or 'mlp', not {config.align.method!r}")
    device = resolve_device(config.train.device)
    store.to(device)
    labels = start.to(device)
    train_pos = store.frame_positions(store.utterance_ids("train"))
    dev_pos = store.frame_positions(store.utterance_ids("dev"))
    for round_ in range(1, config.align.rounds + 1):
        model = align_round_model(store, labels, config, seed=config.train.seed + round_, callback=callback)
        prior = state_prior(labels[train_pos])
        new, score = realign(store, model, prior, config)
        new = new.to(device)
        changed = float((new[train_pos] != labels[train_pos]).float().mean())
        phones_changed = new[train_pos] // STATES_PER_PHONE != labels[train_pos] // STATES_PER_PHONE
        record = {
            "round": round_,
            "changed": changed,
            # State labels also move when a state boundary inside a phone shifts by a frame; phone labels only
            # when a phone boundary does: the better measure of whether the segmentation has settled.
            "phones_changed": float(phones_changed.float().mean()),
            "score_per_frame": score,
            "classifier_dev_acc": frame_accuracy(model, store, dev_pos, labels) if len(dev_pos) else float("nan"),
            "silence_fraction": float((new[train_pos] // STATES_PER_PHONE == SILENCE_INDEX).float().mean()),
        }
        history.append(record)
        if callback:
            callback({"event": "align", "stage": "align", "round": round_, "rounds": config.align.rounds, **record})
        if progress:
            print(f"align round {round_}: " + ", ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "round"))
        labels = new
        if record["phones_changed"] < config.align.settle:
            break
    return labels.cpu(), history


def phone_segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(phone, first frame, end frame) runs of a state-label sequence."""
    phones = labels // STATES_PER_PHONE
    runs, start = [], 0
    for t in range(1, len(phones) + 1):
        if (
            t == len(phones)
            or phones[t] != phones[start]
            or (labels[t] % STATES_PER_PHONE) < (labels[t - 1] % STATES_PER_PHONE)
        ):
            runs.append((int(phones[start]), start, t))
            start = t
    return runs


def phone_times(labels: np.ndarray, shift: int = 160, length: int = 400) -> list[tuple[int, int, str]]:
    """(start sample, end sample, phone) of each phone, a frame standing for the shift-long span at its centre."""
    half = (length - shift) // 2
    return [
        (0 if start == 0 else start * shift + half, end * shift + half, INVENTORY[phone])
        for phone, start, end in phone_segments(labels)
    ]


def write_phn(
    store: FrameStore, labels: torch.Tensor, out_dir: str | Path, shift: int = 160, length: int = 400
) -> None:
    """TIMIT .phn files ('start_sample end_sample phone') per utterance, and alignments.jsonl beside them for the
    utterances that came from a release (keyed by their audio's SHA-256, seconds: `release_build --alignments`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for u, utt in enumerate(store.utterances):
        times = phone_times(labels[int(store.offsets[u]) : int(store.offsets[u + 1])].numpy(), shift, length)
        (out / f"{utt.utt_id}.phn").write_text("".join(f"{b} {e} {p.lower()}\n" for b, e, p in times))
        if utt.sha256:
            phones = [[b / SAMPLE_RATE, e / SAMPLE_RATE, p] for b, e, p in times]
            rows.append(json.dumps({"utt_id": utt.utt_id, "sha256": utt.sha256, "phones": phones}))
    if rows:
        (out / "alignments.jsonl").write_text("\n".join(rows) + "\n")


def save_alignment(path: str | Path, labels: torch.Tensor, history: list[dict[str, float]]) -> None:
    torch.save({"labels": labels.to(torch.int16), "history": history}, path)
    Path(path).with_suffix(".json").write_text(json.dumps(history, indent=2) + "\n")


def load_alignment(path: str | Path) -> tuple[torch.Tensor, list[dict[str, float]]]:
    data = torch.load(path, weights_only=True)
    return data["labels"].long(), data["history"]
