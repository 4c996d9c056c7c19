"""Forced alignment of a release's clips while the release is built, by the monophone HMM of hmm_align.py.

The release builder hands over the audio files, each clip's canonical phones per word and, when the platform has
one, the latest HMM trained on it (a previous release's, or a training run's alignment stage's). That HMM is
re-estimated on this release's train split with a few Viterbi EM passes (``REFINE_PASSES``); without one, an HMM is
trained from a flat start on the train split (all clips when there is none). Either then aligns every clip, and is
returned to be kept for the next release. The result is TIMIT's: ``(start sample, end sample, phone)`` with ``sil``
for silence, covering the whole file. ``espeak_accuracy`` measures the model on espeak-ng readings whose phone
times are known, for the datasheet.

Plain torch and numpy, no Django.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch

from training.ml.config import FeatureConfig
from training.ml.features import FeatureExtractor
from training.ml.hmm_align import (
    HmmSettings,
    StoredHmm,
    feature_settings,
    load_hmm,
    mfcc_from_logmel,
    train_and_align,
    utterance_graph,
    viterbi_all,
)
from training.ml.threads import fixed_threads, ordered_map

STAGES = (6, 3, 3, 3)  # EM passes at 1, 2, 4, 8 Gaussians per state, from a flat start
# Viterbi EM passes that adapt the platform's latest HMM to this release's train split (benchmarks/alignment_start.py:
# the measured choice, and what it costs against a flat start, are in hmm_align.HmmSettings.refine_passes).
REFINE_PASSES = HmmSettings().refine_passes
# The figure for the flat-start recipe itself, measured offline (an HMM trained from a flat start on 300 espeak-ng
# readings and aligning them): quoted only, and said to be such, when a build cannot measure its own model.
OFFLINE_ESPEAK = {
    "within_20ms": 0.912,
    "mean_abs_error_ms": 9.2,
    "reference": "benchmarks/alignment.py --utterances 300 (docs/training.md, Alignment accuracy)",
}
# The build's own check: this many espeak-ng readings of the given sentences (seeded voices, speeds, pitches),
# aligned by the release's final HMM as it aligns the release (no training on them). A second or two.
ESPEAK_CHECK_READINGS = 20
# EM needs a few hundred clips to estimate 39 phones' Gaussians (the espeak-ng figure above is for an HMM trained
# on 300 utterances), and each of its 15 passes costs a pass over the clips it trains on: a larger release trains
# on this many of its train clips, evenly spread over them, and then aligns every clip.
MAX_TRAIN_CLIPS = 600
# The aligner's intra-op CPU threads, whatever the worker has: its sums round differently on each count, and EM turns
# that into other phone times (threads.py), so a rebuild on another machine would publish other .PHN files. The
# cores are used instead by ``workers`` threads over clips and batches, whose results are combined in order.
THREADS = 1


@dataclass
class Aligned:
    """A release's alignment: each clip's (start, end, phone) and the HMM that made it, for the next release."""

    phones: list[list[tuple[int, int, str]]]
    hmm: StoredHmm
    train_clips: int  # the clips its EM passes ran over
    em_passes: int  # here, on this release: a flat start's all, or the passes that adapted a given model


def model_description(stored: StoredHmm) -> str:
    """The datasheet's name for the aligner's model."""
    return f"monophone HMM (training/ml/hmm_align.py), 3 states per phone, {stored.model.mixtures} Gaussians per state"


def release_features() -> dict[str, Any]:
    """The feature settings a release's HMM is trained and used with (hmm_align.feature_settings)."""
    return feature_settings(FeatureConfig())


def load_release_hmm(path: str | Path) -> StoredHmm:
    """A saved HMM that can start this aligner; hmm_align.HmmMismatch (with the reason) when it cannot."""
    return load_hmm(path, features=release_features())


def _features(paths: Sequence[Path], config: FeatureConfig, workers: int = 1) -> list[torch.Tensor]:
    """Per clip, 39-dim MFCCs with the clip's mean removed (CMN), one clip at a time on each of ``workers`` threads
    (a clip's features are the same on any thread; the extractor works through cache-sized blocks of frames, so
    batching clips gains nothing). Each thread has its own extractor."""
    local = threading.local()

    def clip(path: Path) -> torch.Tensor:
        if not hasattr(local, "extractor"):
            local.extractor = FeatureExtractor(config)
        wave = soundfile.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1)
        return _clip_features(local.extractor, wave, config)

    return list(ordered_map(clip, paths, workers))


def _clip_features(extractor: FeatureExtractor, wave: np.ndarray, config: FeatureConfig) -> torch.Tensor:
    if len(wave) < config.frame_length:  # not one whole frame
        return torch.empty(0, 39)
    with torch.no_grad():
        mfcc = mfcc_from_logmel(extractor(torch.from_numpy(np.ascontiguousarray(wave))[None])[0])
    return mfcc - mfcc.mean(0)


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
    init: StoredHmm | None = None,
    refine_passes: int = REFINE_PASSES,
    workers: int = 1,
) -> Aligned:
    """Each clip's phone alignment and the HMM that made it (at least one clip). ``words`` are each
    clip's canonical phones per word, ``train`` the clips the HMM is trained on (every clip when None or empty);
    ``init`` an HMM to start from (``refine_passes`` Viterbi EM passes), else a flat start (``stages``).
    ``workers``: threads over clips (features) and batches (EM and Viterbi), each on ``THREADS`` intra-op threads;
    the alignments and the HMM are the same on any number."""
    if not paths:
        raise ValueError("no clips to align")
    with fixed_threads(THREADS):
        return _align_files(paths, words, train, stages, init, refine_passes, workers)


def _align_files(
    paths: Sequence[Path],
    words: Sequence[Sequence[Sequence[str]]],
    train: Sequence[int] | None,
    stages: Sequence[int],
    init: StoredHmm | None,
    refine_passes: int,
    workers: int,
) -> Aligned:
    config = FeatureConfig()
    feats = _features(paths, config, workers)
    x = torch.cat(feats)
    # As hmm_align.cmn_features: a global scale after per-clip CMN; a given model's own, so that its Gaussians fit.
    scale = init.scale if init is not None else x.std(0).clamp(min=1e-5)
    x = x / scale
    offsets = [0, *itertools.accumulate(len(f) for f in feats)]
    train_ids = _spread([u for u in (train or range(len(paths))) if len(feats[u])], MAX_TRAIN_CLIPS) or None
    settings = HmmSettings(stages=tuple(stages), refine_passes=refine_passes, workers=workers)
    labels, model, _ = train_and_align(
        x, offsets, [list(map(list, w)) for w in words], settings, train_ids, init=init.model if init else None
    )
    samples = [soundfile.info(str(p)).frames for p in paths]
    return Aligned(
        phones=[phone_times(labels[offsets[u] : offsets[u + 1]], samples[u], config) for u in range(len(paths))],
        hmm=StoredHmm(model, release_features(), scale),
        train_clips=len(train_ids) if train_ids else len(paths),
        em_passes=refine_passes if init is not None else sum(stages),
    )


def espeak_accuracy(stored: StoredHmm, texts: Sequence[str], readings: int = ESPEAK_CHECK_READINGS) -> dict | None:
    """How well ``stored`` places phone boundaries where they are known: espeak-ng readings of ``texts`` (cycled;
    seeded voices, speeds and pitches), each aligned to its own phones by the model as it is (no training on them),
    scored against espeak-ng's phone times. None when libespeak-ng is not installed."""
    from training.ml.align import phone_times as frame_phone_times
    from training.ml.espeak_reference import SHIFT, Scores

    references = _espeak_readings(tuple(texts), readings)
    if references is None:
        return None
    config = FeatureConfig()
    extractor = FeatureExtractor(config)
    with fixed_threads(THREADS):
        feats = [_clip_features(extractor, r.wave, config) for r in references]
        offsets = [0, *itertools.accumulate(len(f) for f in feats)]
        graphs = [utterance_graph(r.words) for r in references]
        paths, _ = viterbi_all(
            stored.model, torch.cat(feats) / stored.scale, offsets, graphs, HmmSettings().batch_frames
        )
    scores = Scores()
    for ref, path, graph in zip(references, paths, graphs, strict=True):
        scores.add(ref, frame_phone_times(graph.states[path], SHIFT, config.frame_length))
    return {
        "readings": len(references),
        "boundaries": len(scores.errors),
        "unscored": scores.mismatched,
        "within_20ms": round(scores.within(0.020), 3),
        "mean_abs_error_ms": round(1000 * float(np.mean(scores.errors)), 1) if scores.errors else None,
    }


@functools.lru_cache(maxsize=2)
def _espeak_readings(texts: tuple[str, ...], readings: int):
    """The fixed check set, synthesised once per process (a few tenths of a second) and reused by later builds."""
    from training.ml.espeak_reference import espeak_available, espeak_corpus

    if not espeak_available():
        return None
    return tuple(espeak_corpus(list(texts), readings, seed=0))
