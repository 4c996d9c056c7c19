"""Run a submitted model in a separate, limited process that sees the test audio only.

Limits: address space (RLIMIT_AS), CPU seconds (RLIMIT_CPU), file size (RLIMIT_FSIZE), open files
(RLIMIT_NOFILE), a wall-clock timeout, a fresh network namespace (``unshare -n``: no interface but a
down loopback) where the host allows it, a new session so the whole group can be killed, an empty
environment (no database or storage credentials), and a working folder holding only the model and the
waveforms. Where ``unshare`` is not permitted (an unprivileged container without user namespaces) the run
goes on without the network namespace and says so in ``isolation``; the parent never gives the child
anything secret either way. Labels stay in the parent, which scores the returned log-probabilities.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.evaluation.checks import SubmissionRejected

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 4 * 1024**3
    cpu_seconds: int = 900
    wall_seconds: float = 1200.0
    file_bytes: int = 1024**3
    open_files: int = 256
    threads: int = 1
    rtf_runs: int = 5
    rtf_utterances: int = 20


@dataclass(frozen=True)
class SandboxResult:
    log_probs: dict[str, np.ndarray]
    rtf_runs: list[float]
    isolation: str  # "network-namespace" or "none"


@lru_cache(maxsize=1)
def network_isolation_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _limit(limits: SandboxLimits):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_sandboxed(
    model_path: Path,
    waveforms: dict[str, np.ndarray],
    *,
    classes: int,
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    """Log-probabilities [frames, classes] per utterance id; raises SubmissionRejected with a code."""
    limits = limits or SandboxLimits()
    with tempfile.TemporaryDirectory(prefix="eval-") as folder:
        workdir = Path(folder)
        shutil.copyfile(model_path, workdir / "model.onnx")
        (workdir / "inputs").mkdir()
        for utterance, samples in waveforms.items():
            np.save(workdir / "inputs" / f"{utterance}.npy", np.asarray(samples, dtype=np.float32))
        command = [
            sys.executable, "-m", "benchmark.evaluation.worker", str(workdir), "--threads", str(limits.threads),
            "--classes", str(classes), "--rtf-runs", str(limits.rtf_runs),
            "--rtf-utterances", str(limits.rtf_utterances),
        ]  # fmt: skip
        isolation = "none"
        if network_isolation_available():
            command = [shutil.which("unshare") or "unshare", "-n", *command]
            isolation = "network-namespace"
        environment = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(PROJECT_ROOT),
            "HOME": str(workdir),
            "OMP_NUM_THREADS": str(limits.threads),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit(limits),
        )
        try:
            output, _ = process.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise SubmissionRejected(
                "eval_timeout", f"The evaluation ran past its {limits.wall_seconds:g} s wall-clock limit."
            ) from None
        error_file = workdir / "error.json"
        if error_file.exists():
            error = json.loads(error_file.read_text())
            raise SubmissionRejected(error["code"], error["message"])
        if process.returncode != 0:
            raise _crash(process.returncode, output.decode(errors="replace"))
        with np.load(workdir / "outputs.npz") as archive:
            log_probs = {key: archive[key] for key in archive.files}
        timings = json.loads((workdir / "timings.json").read_text())
    return SandboxResult(log_probs=log_probs, rtf_runs=timings["rtf"], isolation=isolation)


def _crash(returncode: int, output: str) -> SubmissionRejected:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return SubmissionRejected("eval_cpu_time", "The evaluation used up its CPU-time limit.")
    if returncode == -signal.SIGXFSZ:
        return SubmissionRejected("eval_file_size", "The evaluation tried to write more than its file limit.")
    if "MemoryError" in output or "bad_alloc" in output or "alloc" in output.lower():
        return SubmissionRejected("eval_memory", "The model needs more memory than the evaluation allows.")
    tail = output.strip().splitlines()[-1:] or ["no output"]
    return SubmissionRejected("eval_crashed", f"The evaluation process failed ({returncode}): {tail[0][:300]}")
