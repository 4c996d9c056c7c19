"""The mimic's transfer set: unlabelled frames the teacher labels, beyond the labelled training split.

Ba & Caruana's mimics learn from the teacher's logits, which need no labels, so a mimic can train on more
frames than the teacher had labels for: the paper's lever. The shared data has no spare recordings (the other
half of speechocean762 is the held-out check), so the frames come from the training split itself, speed-perturbed
as Kaldi's recipes do (factors 0.9 and 1.1: each copy is the same audio read as if sampled at factor x 16 kHz,
so its tempo and pitch change together). No perturbed copy is ever scored or aligned; only the teacher reads them,
and its logits are the mimic's only targets for them.

A copy is cached beside the store it derives from (``store_dir/transfer/speed-F.pt``), normalised with that
store's training statistics (the student reads every frame through the run's one normaliser).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import soxr
import torch
from tqdm import tqdm

from training.ml.config import Config, InvalidConfig
from training.ml.data import FrameStore, compute_features, load_audio, store_dir
from training.ml.features import Normaliser

SPLIT = "transfer"


def speed_perturb(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """``wave`` played ``factor`` times as fast (tempo and pitch), at the same sample rate: sox's ``speed``."""
    if factor <= 0:
        raise ValueError(f"a speed factor is positive, not {factor}")
    if factor == 1.0:
        return wave
    return soxr.resample(wave, sample_rate * factor, sample_rate).astype(np.float32)


def check_transfer(config: Config) -> None:
    """InvalidConfig, with a sentence, for transfer speeds that cannot train: checked before any work is done."""
    factors = config.train.transfer_speeds
    if factors and not config.train.objective.startswith("mimic"):
        raise InvalidConfig(
            "train.transfer_speeds gives a mimic unlabelled frames its teacher labels; a run on labels or CTC has no "
            "targets for them."
        )
    if len(set(factors)) != len(factors):
        raise InvalidConfig(f"train.transfer_speeds repeats a factor: {factors}")
    if any(f <= 0 for f in factors):
        raise InvalidConfig(f"train.transfer_speeds are speed factors, each positive: {factors}")


def _copy_path(config: Config, factor: float) -> Path:
    return store_dir(config) / "transfer" / f"speed-{factor:g}.pt"


def perturbed_copy(config: Config, base: FrameStore, factor: float, progress: bool = True) -> FrameStore:
    """The train split of ``base`` at ``factor`` x speed, as a store of its own (split "transfer"), cached."""
    path = _copy_path(config, factor)
    if path.exists():
        copy = FrameStore.load(path)
        copy.context = base.context
        return copy
    train = [base.utterances[u] for u in base.utterance_ids("train")]
    rate = config.features.sample_rate
    waves = [
        speed_perturb(load_audio(u.audio, rate), factor, rate)
        for u in tqdm(train, desc=f"speed {factor:g}", disable=not progress)
    ]
    feats = compute_features(waves, config.features, progress=progress)
    kept = [(u, f) for u, f in zip(train, feats, strict=True) if len(f)]
    utterances = [dataclasses.replace(u, utt_id=f"sp{factor:g}-{u.utt_id}", split=SPLIT, words=[]) for u, _ in kept]
    normaliser = Normaliser(base.normaliser.mean.cpu(), base.normaliser.std.cpu())
    copy = FrameStore.from_features(utterances, [f for _, f in kept], normaliser, base.context)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two runs may build the same copy at once: each its own file
    copy.save(tmp)
    tmp.replace(path)
    return copy


def with_transfer(config: Config, base: FrameStore, progress: bool = True) -> FrameStore:
    """``base`` followed by a speed-perturbed copy of its train split per ``train.transfer_speeds``: every
    frame of ``base`` keeps its position (labels, dev and test positions stay valid), the copies' utterances come
    after it with split "transfer". ``base`` itself when there are no factors."""
    check_transfer(config)
    factors = config.train.transfer_speeds
    if not factors:
        return base
    device = base.frames.device
    utterances = list(base.utterances)
    frames, offsets = [base.frames], [base.offsets]
    for factor in factors:
        copy = perturbed_copy(config, base, factor, progress).to(device)
        utterances += copy.utterances
        frames.append(copy.frames)
        offsets.append(copy.offsets[1:] + offsets[-1][-1])
    return FrameStore(utterances, torch.cat(frames), torch.cat(offsets), base.normaliser, base.context)


def transfer_positions(store: FrameStore) -> torch.Tensor:
    """Every frame the mimic learns from: the train split's, then the transfer copies'."""
    return store.frame_positions(store.utterance_ids("train") + store.utterance_ids(SPLIT))
