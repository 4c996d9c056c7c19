"""The sandboxed side of an evaluation: run one ONNX model over waveforms, check, decode, measure.

Started by :mod:`benchmark.leaderboard.evaluation.sandbox` in a separate process with resource limits and, where the
host allows, no network. It reads only its working folder and writes there: ``outputs.npz`` (no decoder) or
``decoded.json`` (phones and frame counts per utterance), ``timings.json``, ``metrics.json`` when asked, or
``error.json`` with a code when something goes wrong. Each phase runs under its own CPU budget (the soft
RLIMIT_CPU is moved before it), scaled by the duration of the audio it works on.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
HOP = 160


def _fail(workdir: Path, code: str, message: str) -> int:
    (workdir / "error.json").write_text(json.dumps({"code": code, "message": message[:2000]}))
    return 3


def _budget(seconds: float) -> None:
    """From now on the process may spend ``seconds`` more CPU time (never past the parent's hard limit)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--rtf-runs", type=int, default=5)
    parser.add_argument("--rtf-utterances", type=int, default=20)
    parser.add_argument("--startup-cpu", type=float, default=60.0)
    parser.add_argument("--realtime-factor", type=float, default=2.0)
    parser.add_argument("--utterance-cpu", type=float, default=3.0)
    parser.add_argument("--decode-factor", type=float, default=2.0)
    parser.add_argument("--decode-cpu", type=float, default=30.0)
    parser.add_argument("--frame-slack", type=int, default=8)
    parser.add_argument("--decoder", choices=["greedy", "greedy_ctc", "hmm_bigram"])
    parser.add_argument("--metrics", action="store_true")
    args = parser.parse_args(argv)
    workdir: Path = args.workdir
    _budget(args.startup_cpu)

    import onnxruntime as ort  # imported here so that a failure to load is reported, not a traceback

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(str(workdir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return _fail(workdir, _classify(exc, "eval_load_failed"), f"onnxruntime could not load the model: {exc}")
    input_name = session.get_inputs()[0].name
    inputs = sorted((workdir / "inputs").glob("*.npy"))

    def run(path: Path) -> tuple[np.ndarray, int]:
        waveform = np.load(path)[None, :].astype(np.float32)
        _budget(args.utterance_cpu + args.realtime_factor * waveform.shape[1] / SAMPLE_RATE)
        (result,) = session.run(None, {input_name: waveform})
        return result, waveform.shape[1]

    outputs: dict[str, np.ndarray] = {}
    audio_samples = 0
    for path in inputs:
        try:
            result, samples = run(path)
        except Exception as exc:
            return _fail(workdir, _classify(exc, "eval_runtime_error"), f"{path.stem}: {exc}")
        audio_samples += samples
        if result.ndim != 3 or result.shape[0] != 1 or result.shape[2] != args.classes:
            return _fail(
                workdir,
                "eval_output_shape",
                f"{path.stem}: output shape {list(result.shape)}; expected [1, frames, {args.classes}].",
            )
        most = math.ceil(samples / HOP) + args.frame_slack
        if result.shape[1] > most:
            return _fail(
                workdir,
                "eval_output_frames",
                f"{path.stem}: {result.shape[1]} frames for {samples} samples; at most ceil(samples / {HOP})"
                f" + {args.frame_slack} = {most}.",
            )
        if not np.isfinite(result).all():
            return _fail(workdir, "eval_output_not_finite", f"{path.stem}: the output holds NaN or infinite values.")
        outputs[path.stem] = result[0].astype(np.float32)

    # Real-time factor: compute time over audio time on a fixed subset, several runs at fixed threads.
    subset = inputs[: args.rtf_utterances]
    audio_seconds = sum(np.load(p).shape[0] for p in subset) / SAMPLE_RATE
    factors = []
    for _ in range(args.rtf_runs):
        elapsed = 0.0
        for path in subset:
            started = time.perf_counter()
            run(path)  # the budget is set inside, outside the timing
            elapsed += time.perf_counter() - started
        factors.append(elapsed / max(audio_seconds, 1e-9))
    (workdir / "timings.json").write_text(json.dumps({"rtf": factors, "audio_seconds": audio_seconds}))

    if args.decoder is None:
        # mypy matches **outputs against savez's allow_pickle: bool as well as its **kwds arrays.
        np.savez(workdir / "outputs.npz", **outputs)  # type: ignore[arg-type]
    else:
        _budget(args.decode_cpu + args.decode_factor * audio_samples / SAMPLE_RATE)
        names = list(outputs)
        hypotheses = _decode(args.decoder, [outputs[n] for n in names], workdir)
        (workdir / "decoded.json").write_text(
            json.dumps(
                {
                    "hypotheses": dict(zip(names, hypotheses, strict=True)),
                    "frames": {n: int(outputs[n].shape[0]) for n in names},
                }
            )
        )
    if args.metrics:
        _budget(args.startup_cpu)
        from benchmark.leaderboard.evaluation.metrics import graph_metrics

        graph = graph_metrics(workdir / "model.onnx")
        (workdir / "metrics.json").write_text(
            json.dumps({"parameters": graph.parameters, "depth": graph.depth, "macs_per_second": graph.macs_per_second})
        )
    return 0


def _decode(decoder: str, log_probs: list[np.ndarray], workdir: Path) -> list[list[str]]:
    if decoder == "hmm_bigram":
        from speech.decoding import decode_hmm_bigram, hmm_bigram_decoder

        transcripts = json.loads((workdir / "train.json").read_text())
        return decode_hmm_bigram(hmm_bigram_decoder(transcripts), log_probs)
    from speech.decoding import decode_greedy

    return [decode_greedy(lp, ctc=decoder == "greedy_ctc") for lp in log_probs]


def _classify(exc: Exception, default: str) -> str:
    text = str(exc).lower()
    if "alloc" in text or "memory" in text:
        return "eval_memory"
    return default


if __name__ == "__main__":
    sys.exit(main())
