"""The sandboxed side of an evaluation: run one ONNX model over waveforms, write log-probabilities.

Started by :mod:`benchmark.evaluation.sandbox` in a separate process with resource limits and, where the
host allows, no network. It reads only its working folder and writes ``outputs.npz`` and
``timings.json`` there, or ``error.json`` with a code when something goes wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _fail(workdir: Path, code: str, message: str) -> int:
    (workdir / "error.json").write_text(json.dumps({"code": code, "message": message[:2000]}))
    return 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--rtf-runs", type=int, default=5)
    parser.add_argument("--rtf-utterances", type=int, default=20)
    args = parser.parse_args(argv)
    workdir: Path = args.workdir

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
    outputs: dict[str, np.ndarray] = {}
    for path in inputs:
        waveform = np.load(path)[None, :].astype(np.float32)
        try:
            (result,) = session.run(None, {input_name: waveform})
        except Exception as exc:
            return _fail(workdir, _classify(exc, "eval_runtime_error"), f"{path.stem}: {exc}")
        if result.ndim != 3 or result.shape[0] != 1 or result.shape[2] != args.classes:
            return _fail(
                workdir,
                "eval_output_shape",
                f"{path.stem}: output shape {list(result.shape)}; expected [1, frames, {args.classes}].",
            )
        if not np.isfinite(result).all():
            return _fail(workdir, "eval_output_not_finite", f"{path.stem}: the output holds NaN or infinite values.")
        outputs[path.stem] = result[0].astype(np.float32)

    # Real-time factor: compute time over audio time on a fixed subset, several runs at fixed threads.
    subset = inputs[: args.rtf_utterances]
    audio_seconds = sum(np.load(p).shape[0] for p in subset) / 16_000
    factors = []
    for _ in range(args.rtf_runs):
        started = time.perf_counter()
        for path in subset:
            session.run(None, {input_name: np.load(path)[None, :].astype(np.float32)})
        factors.append((time.perf_counter() - started) / max(audio_seconds, 1e-9))
    np.savez(workdir / "outputs.npz", **outputs)
    (workdir / "timings.json").write_text(json.dumps({"rtf": factors, "audio_seconds": audio_seconds}))
    return 0


def _classify(exc: Exception, default: str) -> str:
    text = str(exc).lower()
    if "alloc" in text or "memory" in text:
        return "eval_memory"
    return default


if __name__ == "__main__":
    sys.exit(main())
