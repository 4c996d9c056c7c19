"""Boundary accuracy of the forced aligners on speech whose phone timings are known, peers in the same run.

Usage::

    nice -n 19 .venv/bin/python benchmarks/alignment.py [--utterances 300] [--mlp-rounds 4] [--threads 2]

Reference timings (``training/ml/espeak_reference.py``): espeak-ng reading varied sentences (the demo prompts and
the speechocean762 texts) with several voices, pitches and speeds; libespeak-ng reports the exact output sample at
which it starts each phoneme. Every aligner is given espeak's phone sequence mapped onto the project's ARPAbet set
(grouped into espeak's words, with optional silences between them), so its boundaries compare one for one.

Rows, all on the same utterances, each aligner trained on them from scratch as it would be on a release:

- **uniform**: sil + phones + sil spread evenly over the frames (the flat start);
- **mlp**: ``training/ml/align.py``'s flat-start frame-classifier realignment (``align.method = "mlp"``);
- **hmm**: the monophone HMM of ``training/ml/hmm_align.py`` (Baum-Welch, then Viterbi EM to 8 Gaussians), no MLP
  round;
- **hmm+mlp**: the HMM alignment followed by the MLP realignment rounds (``align.method = "hmm"``).

Columns: the share of phone boundaries within 20 ms (and 10, 40 ms) of the reference, the mean absolute boundary
error, and the share of phones squashed to the 3-frame (30 ms) minimum of a 3-state HMM; the reference's own share
of phones shorter than 30 ms is printed beside it. A boundary is the onset of every phone, plus the offset of a
phone that the reference follows by silence.

A second reference set, hand-labelled read English, is used when a package on the machine ships one (none that
pip offers was found: see docs/training.md); it is skipped otherwise.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contributors.demo_prompts import COVERAGE_PROMPTS, SHARED_PROMPTS  # noqa: E402  (needs ROOT on sys.path)
from training.ml.espeak_reference import (  # noqa: E402
    RATE,
    SHIFT,
    VOICES,
    Reference,
    Scores,
    espeak_available,
    espeak_corpus,
)

MANIFEST = ROOT.parent / "shared" / "data" / "speechocean762-train" / "manifest.tsv"
LENGTH = 400  # the features' 25 ms window

__all__ = ["RATE", "SHIFT", "Reference", "Scores", "espeak_available", "espeak_corpus"]  # for the tests' use


def benchmark_texts() -> list[str]:
    """The demo's prompts and, when the shared corpus is here, its sentences (every one different)."""
    texts = list(DEMO_SENTENCES)
    if MANIFEST.exists():
        import csv

        with MANIFEST.open(encoding="utf-8", newline="") as handle:
            texts += [row["text"].lower() for row in csv.DictReader(handle, delimiter="\t")]
    return texts


# The sentences of the demo's shared and coverage prompts, which cover every phone.
DEMO_SENTENCES = SHARED_PROMPTS + COVERAGE_PROMPTS[:16]


# --- measuring ------------------------------------------------------------------------------------------------


def store_for(references: list[Reference], config):
    from training.ml.data import Utterance, build_store

    utterances = [
        Utterance(utt_id=r.utt_id, speaker=r.utt_id, audio="", text="", split="train", words=r.words)
        for r in references
    ]
    return build_store(utterances, [r.wave for r in references], config)


def score_labels(references: list[Reference], store, labels) -> Scores:
    from training.ml.align import phone_times

    scores = Scores()
    for u, ref in enumerate(references):
        lab = labels[int(store.offsets[u]) : int(store.offsets[u + 1])].numpy()
        scores.add(ref, phone_times(lab, SHIFT, LENGTH))
    return scores


def reference_short_share(references: list[Reference]) -> float:
    durations = np.array([e - s for r in references for _, s, e in r.phones])
    return float(np.mean(durations < 0.030 - 1e-9))


def run_aligners(references: list[Reference], config_file: Path, mlp_rounds: int) -> list[tuple[str, Scores, float]]:
    import dataclasses

    import torch

    from training.ml.align import align_corpus, flat_start_labels
    from training.ml.config import load_config

    config = load_config([config_file])
    config.train.progress = False
    config.train.device = "cpu"
    config.align.rounds = mlp_rounds
    store = store_for(references, config)
    rows: list[tuple[str, Scores, float]] = []
    started = time.perf_counter()
    rows.append(("uniform (flat start)", score_labels(references, store, flat_start_labels(store)), 0.0))
    runs = [
        ("mlp: flat start + MLP realignment (align.method=mlp)", {"method": "mlp"}),
        ("hmm: monophone HMM, Baum-Welch then Viterbi EM, 1->8 Gaussians", {"method": "hmm", "rounds": 0}),
        ("hmm+mlp: HMM, then the MLP realignment rounds", {"method": "hmm"}),
    ]
    for name, change in runs:
        cfg = dataclasses.replace(config, align=dataclasses.replace(config.align, **change))
        torch.manual_seed(cfg.train.seed)
        started = time.perf_counter()
        labels, _ = align_corpus(store, cfg, progress=False)
        rows.append((name, score_labels(references, store, labels), time.perf_counter() - started))
    return rows


def table(rows: list[tuple[str, Scores, float]], title: str) -> str:
    lines = [
        f"{title}",
        "",
        "| aligner | within 20 ms | within 10 ms | within 40 ms | mean abs error | squashed to 30 ms | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s, seconds in rows:
        mean = 1000 * float(np.mean(s.errors)) if s.errors else float("nan")
        lines.append(
            f"| {name} | {100 * s.within(0.020):.1f} % | {100 * s.within(0.010):.1f} % | {100 * s.within(0.040):.1f} % "
            f"| {mean:.1f} ms | {100 * s.squashed / max(1, s.phones):.1f} % | {seconds:.0f} |"
        )
    return "\n".join(lines)


def hand_labelled_references() -> list[Reference]:
    """Hand-labelled read English shipped by an installed package: none is known to pip today."""
    return []


def corpus_arguments(parser: argparse.ArgumentParser, *, utterances_help: str | None = None) -> None:
    """The options of the espeak-ng corpus that :func:`corpus_read` reads (``benchmarks/alignment_start.py`` too)."""
    parser.add_argument("--utterances", type=int, default=300, help=utterances_help)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)


def corpus_read(args: argparse.Namespace) -> list[Reference] | None:
    """``args.utterances`` espeak-ng readings, of the demo's sentences first (they cover every phone), then of the
    other texts in an order drawn from ``args.seed``, with torch on ``args.threads`` threads. None (said on stderr)
    without libespeak-ng."""
    import torch

    torch.set_num_threads(args.threads)
    if not espeak_available():
        print("libespeak-ng is not installed (apt-get install espeak-ng): nothing to measure.", file=sys.stderr)
        return None
    texts = benchmark_texts()
    rng = np.random.default_rng(args.seed)
    texts = list(DEMO_SENTENCES) + [texts[i] for i in rng.permutation(len(texts))]
    return espeak_corpus(texts, args.utterances, seed=args.seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(parser)
    parser.add_argument("--mlp-rounds", type=int, default=4, help="the documented small_cpu recipe's rounds")
    parser.add_argument("--config", default=str(ROOT / "training/ml/configs/small_cpu.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    references = corpus_read(args)
    if references is None:
        return 1
    seconds = sum(len(r.wave) for r in references) / RATE
    n_boundaries = sum(len(r.phones) for r in references)
    print(
        f"espeak-ng corpus: {len(references)} utterances, {seconds / 60:.1f} min of audio, {n_boundaries} phones, "
        f"{100 * reference_short_share(references):.1f} % of reference phones shorter than 30 ms "
        f"(built in {time.perf_counter() - started:.0f} s)"
    )
    rows = run_aligners(references, Path(args.config), args.mlp_rounds)
    print(table(rows, f"espeak-ng, {len(references)} utterances, {len(VOICES)} voices"))
    for name, s, _ in rows:
        if s.mismatched:
            print(f"  {name}: {s.mismatched} utterances not scored (the aligner's phones differ)")
    hand = hand_labelled_references()
    if hand:
        rows = run_aligners(hand, Path(args.config), args.mlp_rounds)
        print(table(rows, "hand-labelled read English"))
    else:
        print("hand-labelled read English: no package on this machine ships any; skipped.")
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
