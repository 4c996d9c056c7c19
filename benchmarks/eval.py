"""The sandbox's overhead: evaluating a 12M-parameter model on a hidden split, against plain in-process onnxruntime.

    python benchmarks/eval.py [--utterances 200] [--threads 1] [--width 2000]

The model is the paper's teacher shape (a 3 x 2000 ReLU MLP on 15 spliced frames of 123 features, features
inside the graph: about 12M parameters) exported through the same path as the platform's baselines; its weights
are random (time does not depend on them). The audio is the speechocean762 utterances that core.splits puts in
the hidden split. Rows:

- peer: one onnxruntime session in this process, every utterance run once (session creation included);
- sandbox, inference only: `run_sandboxed` as the leaderboard calls it, with the RTF repeats off: a separate
  process under rlimits (and a network namespace where the host allows), inputs written as .npy, outputs read back;
- sandbox, as the leaderboard runs it: the same with its RTF measurement (5 runs over 20 utterances);
- decode + score: the published HMM/bigram decoder and PER against the references, outside the sandbox.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmark.evaluation.decoding import decode_hmm_bigram, hmm_bigram_decoder
from benchmark.evaluation.metrics import graph_metrics
from benchmark.evaluation.sandbox import SandboxLimits, run_sandboxed
from core.phones import INVENTORY
from training.ml.config import Config
from training.ml.data import attach_pronunciations, load_audio, read_manifest, split_speakers
from training.ml.export import WaveformModel, export_onnx
from training.ml.features import N_FEATURES, Normaliser
from training.ml.models import DNN, count_parameters
from training.ml.score import corpus_counts

MANIFEST = Path(__file__).resolve().parents[1] / "../shared/data/speechocean762-train/manifest.tsv"


def hidden_split(n: int):
    config = Config()
    utterances = read_manifest(MANIFEST)
    split_speakers(utterances, config.data.split_key)
    attach_pronunciations(utterances, MANIFEST.parent / "lexicon.txt")
    hidden = [u for u in utterances if u.split == "hidden"][:n]
    train = [u for u in utterances if u.split == "train"]
    return hidden, train


def in_process(path: Path, waves: dict[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {u: session.run(None, {"waveform": w[None]})[0][0] for u, w in waves.items()}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=2000)
    args = parser.parse_args()
    if not MANIFEST.exists():
        raise SystemExit(f"The shared corpus is not at {MANIFEST}: this benchmark measures on real speech.")
    torch.manual_seed(0)
    hidden, train = hidden_split(args.utterances)
    waves = {u.utt_id: load_audio(u.audio) for u in hidden}
    seconds = sum(len(w) for w in waves.values()) / 16000
    net = DNN(15 * N_FEATURES, 3, args.width)
    model = WaveformModel(net, Normaliser(torch.zeros(N_FEATURES), torch.ones(N_FEATURES)), Config().features)

    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(model, Path(folder) / "model.onnx")
        metrics = graph_metrics(path)
        print(
            f"model: DNN 3 x {args.width}, {count_parameters(net):,} parameters ({metrics.parameters:,} in the graph), "
            f"{path.stat().st_size / 1e6:.1f} MB; audio: {len(waves)} hidden-split utterances, {seconds:.0f} s; "
            f"{args.threads} thread(s)"
        )
        peer_out, peer_s = timed(lambda: in_process(path, waves, args.threads))
        base = dict(threads=args.threads, rtf_utterances=20)
        bare, bare_s = timed(
            lambda: run_sandboxed(path, waves, classes=len(INVENTORY), limits=SandboxLimits(rtf_runs=0, **base))
        )
        full, full_s = timed(
            lambda: run_sandboxed(path, waves, classes=len(INVENTORY), limits=SandboxLimits(rtf_runs=5, **base))
        )
        worst = max(float(np.max(np.abs(bare.log_probs[u] - peer_out[u]))) for u in waves)

        decoder = hmm_bigram_decoder([u.words for u in train])
        references = [[p for word in u.words for p in word] for u in hidden]
        (_, per), score_s = timed(
            lambda: (
                None,
                corpus_counts(references, decode_hmm_bigram(decoder, [bare.log_probs[u.utt_id] for u in hidden])).per,
            )
        )

    rows = [
        ("peer: in-process onnxruntime", peer_s),
        ("sandbox, inference only", bare_s),
        (f"sandbox as the leaderboard runs it (+ RTF x5, isolation: {full.isolation})", full_s),
        ("decode (hmm_bigram) + score, outside the sandbox", score_s),
    ]
    print("| row | s | x real time | vs peer |")
    print("| --- | ---: | ---: | ---: |")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {seconds / s:.0f} | {s / peer_s:.2f} |")
    print(f"largest |difference| sandbox vs in-process: {worst:.2e}; PER of the random model: {per:.2f}")


if __name__ == "__main__":
    main()
