"""The release aligner started from an earlier model against a flat start: boundary accuracy and wall time.

Usage::

    nice -n 19 .venv/bin/python benchmarks/alignment_start.py [--utterances 300] [--passes 0,1,2,3,5] [--threads 2]

The espeak-ng corpus of ``benchmarks/alignment.py`` (phone times known) is read by six voices; it is cut in two
speaker sets: readings by the first three voices (A, the "earlier release") and by the other three (B, the "new
release"), mostly of different sentences. Every row runs ``training/ml/release_align.align_files``, the release
builder's own aligner, on B's audio files (features included in the wall time) and scores B's boundaries:

- **flat start**: the HMM trained on B from a flat start (``STAGES``, 15 EM passes), as a first release is aligned;
- **from A's model + K passes**: the HMM trained from a flat start on A, re-estimated on B by K Viterbi EM passes
  (``refine_passes``), as a later release is aligned from the platform's latest model.

The ratio column is each row's wall time against the flat start's, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.alignment import corpus_arguments, corpus_read  # noqa: E402
from training.ml.espeak_reference import RATE, VOICES, Reference, Scores  # noqa: E402


def write_waves(references: list[Reference], folder: Path) -> list[Path]:
    paths = []
    for r in references:
        path = folder / f"{r.utt_id}.wav"
        soundfile.write(str(path), r.wave, RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def score(references: list[Reference], found) -> Scores:
    scores = Scores()
    for ref, hyp in zip(references, found, strict=True):
        scores.add(ref, hyp)
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus_arguments(parser, utterances_help="readings in all, about half in each set")
    parser.add_argument("--passes", default="0,1,2,3,5", help="the K values (Viterbi EM passes on B) to compare")
    args = parser.parse_args()
    references = corpus_read(args)
    if references is None:
        return 1
    from training.ml.release_align import align_files

    first = set(VOICES[: len(VOICES) // 2])
    set_a = [r for r in references if r.voice in first]
    set_b = [r for r in references if r.voice not in first]
    seconds_b = sum(len(r.wave) for r in set_b) / RATE
    print(
        f"espeak-ng: A {len(set_a)} readings by {', '.join(sorted(first))}; B {len(set_b)} readings "
        f"({seconds_b / 60:.1f} min) by {', '.join(v for v in VOICES if v not in first)}"
    )
    rows: list[tuple[str, int, Scores, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths_a = write_waves(set_a, Path(tmp))
        paths_b = write_waves(set_b, Path(tmp))
        started = time.perf_counter()
        flat = align_files(paths_b, [r.words for r in set_b])
        rows.append(("flat start on B", flat.em_passes, score(set_b, flat.phones), time.perf_counter() - started))
        model_a = align_files(paths_a, [r.words for r in set_a]).hmm
        for k in [int(v) for v in args.passes.split(",")]:
            started = time.perf_counter()
            result = align_files(paths_b, [r.words for r in set_b], init=model_a, refine_passes=k)
            rows.append((f"from A's model + {k} passes", k, score(set_b, result.phones), time.perf_counter() - started))
    base = rows[0][3]
    print()
    print("| start | EM passes on B | within 20 ms | within 10 ms | within 40 ms | mean abs error | wall s | vs flat |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, passes, s, wall in rows:
        mean = 1000 * float(np.mean(s.errors)) if s.errors else float("nan")
        print(
            f"| {name} | {passes} | {100 * s.within(0.020):.1f} % | {100 * s.within(0.010):.1f} % "
            f"| {100 * s.within(0.040):.1f} % | {mean:.1f} ms | {wall:.1f} | {wall / base:.2f} |"
        )
    for name, _, s, _ in rows:
        if s.mismatched:
            print(f"  {name}: {s.mismatched} readings not scored (the aligner's phones differ)")
    load = os.getloadavg()
    print(f"\nmachine: {platform.processor() or platform.machine()}, torch threads {args.threads}, load {load[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
