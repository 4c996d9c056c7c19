"""Forced alignment of a release's clips while the release is built: the flat-start monophone HMM of hmm_align.py.

The release builder hands over the audio files and each clip's canonical phones per word; the HMM is trained
from a flat start on the train split's clips (all clips when there is no train split) and then aligns every clip.
The result is TIMIT's: ``(start sample, end sample, phone)`` with ``sil`` for silence, covering the whole file.

Plain torch and numpy, no Django.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
import torch

from training.ml.config import FeatureConfig
from training.ml.features import FeatureExtractor
from training.ml.hmm_align import HmmSettings, mfcc_from_logmel, train_and_align

# The aligner a release names in its datasheet, with the boundary accuracy measured for exactly these settings on
# the espeak-ng corpus, where every phone's true time is known (benchmarks/alignment.py --utterances 300;
# docs/training.md, "Alignment accuracy (issue #17)": the "hmm" row).
STAGES = (6, 3, 3, 3)
ALIGNER = {
    "method": "hmm-flat-start",
    "model": "monophone HMM (training/ml/hmm_align.py), 3 states per phone, 1 to 8 Gaussians per state, "
    "trained from a flat start on this release's train split (at most 600 of its clips, evenly spread)",
    "stages": list(STAGES),
    "espeak_boundaries_within_20ms": 0.912,
    "espeak_mean_abs_error_ms": 9.2,
    "espeak_reference": "benchmarks/alignment.py --utterances 300 (docs/training.md, Alignment accuracy)",
}
# EM needs a few hundred clips to estimate 39 phones' Gaussians (the espeak-ng figure above is for an HMM trained
# on 300 utterances), and each of its 15 passes costs a pass over the clips it trains on: a larger release trains
# on this many of its train clips, evenly spread over them, and then aligns every clip.
MAX_TRAIN_CLIPS = 600


def _features(paths: Sequence[Path], config: FeatureConfig) -> list[torch.Tensor]:
    """Per clip, 39-dim MFCCs with the clip's mean removed (CMN), one clip at a time (only one clip's audio in
    memory; the extractor works through cache-sized blocks of frames, so batching clips gains nothing)."""
    extractor = FeatureExtractor(config)
    out = []
    with torch.no_grad():
        for path in paths:
            wave = soundfile.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1)
            if len(wave) < config.frame_length:  # not one whole frame
                out.append(torch.empty(0, 39))
                continue
            mfcc = mfcc_from_logmel(extractor(torch.from_numpy(np.ascontiguousarray(wave))[None])[0])
            out.append(mfcc - mfcc.mean(0))
    return out


def _spread(ids: list[int], most: int) -> list[int]:
    """At most ``most`` of ``ids``, evenly spaced (deterministic: a rebuild aligns alike)."""
    if len(ids) <= most:
        return ids
    return [ids[int(i * len(ids) / most)] for i in range(most)]


def phone_times(labels: np.ndarray, num_samples: int, config: FeatureConfig) -> list[tuple[int, int, str]]:
    """State labels of one clip -> contiguous ``(start, end, phone)`` in samples from 0 to ``num_samples``: a frame
    stands for the shift-long span at its centre, and the last phone runs to the end of the file, as TIMIT's do."""
    from training.ml.align import phone_times as frame_phone_times

    times = frame_phone_times(labels, config.frame_shift, config.frame_length)
    if not times:
        return [(0, num_samples, "sil")]
    start, _, phone = times[-1]
    return [*times[:-1], (start, num_samples, phone)]


def align_files(
    paths: Sequence[Path],
    words: Sequence[Sequence[Sequence[str]]],
    train: Sequence[int] | None = None,
    stages: Sequence[int] = STAGES,
) -> list[list[tuple[int, int, str]]]:
    """Each clip's phone alignment; ``words`` are its canonical phones per word, ``train`` the clips the HMM is
    trained on (every clip when None or empty)."""
    if not paths:
        return []
    config = FeatureConfig()
    feats = _features(paths, config)
    x = torch.cat(feats)
    x = x / x.std(0).clamp(min=1e-5)  # as hmm_align.utterance_features: global scale after per-clip CMN
    offsets = [0, *itertools.accumulate(len(f) for f in feats)]
    train_ids = _spread([u for u in (train or range(len(paths))) if len(feats[u])], MAX_TRAIN_CLIPS) or None
    labels, _, _ = train_and_align(
        x, offsets, [list(map(list, w)) for w in words], HmmSettings(stages=tuple(stages)), train_ids
    )
    samples = [soundfile.info(str(p)).frames for p in paths]
    return [phone_times(labels[offsets[u] : offsets[u + 1]], samples[u], config) for u in range(len(paths))]
