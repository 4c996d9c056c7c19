"""Run a submitted model in a separate, limited process that sees the test audio only.

Limits: address space (RLIMIT_AS), CPU seconds (RLIMIT_CPU), file size (RLIMIT_FSIZE), open files
(RLIMIT_NOFILE), a wall-clock timeout, a fresh network namespace (``unshare -n``: no interface but a
down loopback) where the host allows it, a new session so the whole group can be killed, an empty
environment (no database or storage credentials), and a working folder holding only the model, the
waveforms and (for ``hmm_bigram``) the public train transcripts. Where ``unshare`` is not permitted (an
unprivileged container without user namespaces) the run goes on without the network namespace and says so in
``isolation``; the parent never gives the child anything secret either way. Labels stay in the parent.

Everything a submission makes the machine do runs in the child: inference, the frame-count check, the RTF
repeats, decoding (``decoder``) and the graph metrics (``metrics``). The CPU limits scale with the audio:
the child may spend ``startup_cpu_seconds`` loading, then each inference run gets ``utterance_cpu_seconds``
plus ``realtime_factor`` CPU seconds per second of its audio, and decoding ``decode_cpu_seconds`` plus
``decode_factor`` per second of all audio; past a budget the kernel stops it (SIGXCPU). The wall-clock limit
is derived from the same budgets, capped by ``wall_seconds`` (and the CPU total by ``cpu_seconds``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.leaderboard.evaluation.checks import SubmissionRejected

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_RATE = 16_000
HOP = 160  # the specification's frame rate ceiling: at most ceil(samples / 160) + slack frames
TEMP_PREFIX = "eval-"  # the parent's pid (and start time) follow, so that a sweep can tell a dead worker's folders


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = 4 * 1024**3
    cpu_seconds: int = 900  # ceiling on the child's total CPU time, whatever the audio
    wall_seconds: float = 1200.0  # ceiling on the wall-clock time, whatever the audio
    file_bytes: int = 1024**3
    open_files: int = 256
    threads: int = 1
    rtf_runs: int = 5
    rtf_utterances: int = 20
    startup_cpu_seconds: float = 60.0  # imports, loading the model, graph metrics
    realtime_factor: float = 2.0  # CPU seconds per second of audio for each inference run
    utterance_cpu_seconds: float = 3.0  # plus this for each inference run
    decode_factor: float = 2.0  # CPU seconds per second of audio for decoding
    decode_cpu_seconds: float = 30.0  # plus this (the decoder's imports and set-up)
    frame_slack: int = 8
    wall_factor: float = 2.0  # wall-clock allowance over the CPU budget (a busy machine)


@dataclass(frozen=True)
class SandboxResult:
    log_probs: dict[str, np.ndarray]  # only without a decoder
    rtf_runs: list[float]
    isolation: str  # "network-namespace" or "none"
    hypotheses: dict[str, list[str]] | None = None  # phones per utterance, with a decoder
    frames: dict[str, int] | None = None
    metrics: dict | None = None  # benchmark.leaderboard.evaluation.metrics.GraphMetrics fields, with ``metrics=True``


@lru_cache(maxsize=1)
def network_isolation_available() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def budgets(limits: SandboxLimits, seconds: Sequence[float], *, decoding: bool) -> tuple[int, float]:
    """(CPU seconds, wall seconds) for a run over utterances of these durations."""
    per_run = [limits.utterance_cpu_seconds + limits.realtime_factor * s for s in seconds]
    subset = sum(sorted(per_run)[-limits.rtf_utterances :]) if limits.rtf_utterances > 0 else 0.0
    cpu = limits.startup_cpu_seconds * 2 + sum(per_run) + limits.rtf_runs * subset
    if decoding:
        cpu += limits.decode_cpu_seconds + limits.decode_factor * sum(seconds)
    cpu_total = min(limits.cpu_seconds, math.ceil(cpu))
    return cpu_total, min(limits.wall_seconds, 10.0 + limits.wall_factor * cpu_total)


def _limit(limits: SandboxLimits, cpu_total: int):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_total, cpu_total + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


LEGACY_FOLDER_AGE = 2 * 3600  # seconds: an ``eval-*`` folder without a pid is swept once this old


def _proc_stat(pid: int) -> list[str]:
    """Linux's /proc/PID/stat from field 3 (the state) on, or [] where there is no such file."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()  # the fields after the command name, which may hold spaces


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux's /proc/PID/stat, field 22), or "" where there is
    no /proc: with the pid, it names one process, where the pid alone is soon another's (pid_max is 32,768 on many
    hosts, and a busy worker host goes through that in minutes)."""
    fields = _proc_stat(pid)
    return fields[19] if fields else ""


def process_ended(pid: int) -> bool:
    """A zombie: killed, not yet reaped. A SIGKILLed worker's orphaned pool child is reaped by PID 1, which may
    take its time, and ``kill(pid, 0)`` finds it until then."""
    fields = _proc_stat(pid)
    return bool(fields) and fields[0] in ("Z", "X")


def temp_folder_alive(path: Path) -> bool:
    """Whether an ``eval-<pid>.<start>-*`` folder belongs to a live process: the pid exists and, where the name
    carries its start time, it is the same process, not a later one given the same pid. An ``eval-<pid>-*``
    folder (older code) is judged by its pid alone; one without a pid counts as alive until it is older than any
    evaluation can last."""
    parts = path.name.split("-")
    owner = parts[1].split(".") if len(parts) >= 3 else []
    if not owner or not all(p.isdigit() for p in owner) or len(owner) > 2:
        try:
            return time.time() - path.stat().st_mtime < LEGACY_FOLDER_AGE
        except FileNotFoundError:
            return True
    pid = int(owner[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if process_ended(pid):
        return False
    if len(owner) == 2:
        started = process_start(pid)
        return started in ("", owner[1])  # another process with the pid: the folder's owner is gone
    return True


def sweep_temp_folders(root: Path | None = None) -> int:
    """Remove the evaluation folders (test audio) that a killed worker left behind; returns how many."""
    root = Path(root or tempfile.gettempdir())
    removed = 0
    for path in root.glob(f"{TEMP_PREFIX}*"):
        if path.is_dir() and path.stat().st_uid == os.getuid() and not temp_folder_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def evaluation_folder() -> tempfile.TemporaryDirectory:
    pid = os.getpid()
    started = process_start(pid)
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{pid}.{started}-" if started else f"{TEMP_PREFIX}{pid}-")


class Cancelled(Exception):
    """The ``tick`` callback asked to stop: the child was killed."""


def run_sandboxed(
    model_path: Path,
    waveforms: dict[str, np.ndarray],
    *,
    classes: int,
    limits: SandboxLimits | None = None,
    decoder: str | None = None,
    train_transcripts: Sequence[Sequence[Sequence[str]]] | None = None,
    metrics: bool = False,
    tick: Callable[[], bool] | None = None,
    tick_seconds: float = 5.0,
) -> SandboxResult:
    """Run the model (and decoder, and metrics) on ``waveforms`` in the child; raises SubmissionRejected with a
    code and a detailed message (which may name an utterance: the caller decides what a submitter sees).

    Without ``decoder`` the log-probabilities [frames, classes] come back; with one (``greedy``, ``greedy_ctc``,
    ``hmm_bigram``: then ``train_transcripts``), only the decoded phones and frame counts. ``tick`` is called
    every ``tick_seconds`` while the child runs (a heartbeat); when it returns False the child is killed and
    :class:`Cancelled` raised."""
    limits = limits or SandboxLimits()
    seconds = [len(w) / SAMPLE_RATE for w in waveforms.values()]
    cpu_total, wall = budgets(limits, seconds, decoding=decoder is not None)
    with evaluation_folder() as folder:
        workdir = Path(folder)
        shutil.copyfile(model_path, workdir / "model.onnx")
        (workdir / "inputs").mkdir()
        for utterance, samples in waveforms.items():
            np.save(workdir / "inputs" / f"{utterance}.npy", np.asarray(samples, dtype=np.float32))
        if decoder == "hmm_bigram":
            (workdir / "train.json").write_text(json.dumps([list(map(list, t)) for t in train_transcripts or []]))
        command = [
            sys.executable, "-m", "benchmark.leaderboard.evaluation.worker", str(workdir),
            "--threads", str(limits.threads),
            "--classes", str(classes), "--rtf-runs", str(limits.rtf_runs),
            "--rtf-utterances", str(limits.rtf_utterances),
            "--startup-cpu", str(limits.startup_cpu_seconds), "--realtime-factor", str(limits.realtime_factor),
            "--utterance-cpu", str(limits.utterance_cpu_seconds), "--decode-factor", str(limits.decode_factor),
            "--decode-cpu", str(limits.decode_cpu_seconds), "--frame-slack", str(limits.frame_slack),
        ]  # fmt: skip
        if decoder is not None:
            command += ["--decoder", decoder]
        if metrics:
            command += ["--metrics"]
        isolation = "none"
        if network_isolation_available():
            command = [shutil.which("unshare") or "unshare", "-n", *command]
            isolation = "network-namespace"
        environment = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(PROJECT_ROOT),
            "HOME": str(workdir),
            "OMP_NUM_THREADS": str(limits.threads),
            "MKL_NUM_THREADS": str(limits.threads),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        log_path = workdir / "output.log"
        with log_path.open("wb") as log:  # a file, not a pipe: nothing to drain while we wait
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_limit(limits, cpu_total),
            )
            try:
                _wait(process, wall, tick, tick_seconds)
            finally:
                if process.poll() is None:
                    _kill(process)
        error_file = workdir / "error.json"
        if error_file.exists():
            error = json.loads(error_file.read_text()[:10_000])
            raise SubmissionRejected(str(error["code"])[:64], str(error["message"])[:2000])
        if process.returncode != 0:
            raise _crash(process.returncode, _tail(log_path))
        log_probs: dict[str, np.ndarray] = {}
        hypotheses = frames = None
        if decoder is None:
            with np.load(workdir / "outputs.npz") as archive:
                log_probs = {key: archive[key] for key in archive.files}
        else:
            decoded = json.loads((workdir / "decoded.json").read_text())
            hypotheses, frames = decoded["hypotheses"], decoded["frames"]
        timings = json.loads((workdir / "timings.json").read_text())
        graph = json.loads((workdir / "metrics.json").read_text()) if metrics else None
    return SandboxResult(
        log_probs=log_probs,
        rtf_runs=timings["rtf"],
        isolation=isolation,
        hypotheses=hypotheses,
        frames=frames,
        metrics=graph,
    )


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _wait(process: subprocess.Popen, wall: float, tick: Callable[[], bool] | None, tick_seconds: float) -> None:
    deadline = time.monotonic() + wall
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            _kill(process)
            raise SubmissionRejected("eval_timeout", f"The evaluation ran past its {wall:g} s wall-clock limit.")
        try:
            process.wait(timeout=min(remaining, tick_seconds) if tick else remaining)
            return
        except subprocess.TimeoutExpired:
            if tick is not None and not tick():
                _kill(process)
                raise Cancelled from None


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4000))
        return handle.read().decode(errors="replace")


def _crash(returncode: int, output: str) -> SubmissionRejected:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return SubmissionRejected("eval_cpu_time", "The evaluation used up its CPU-time limit.")
    if returncode == -signal.SIGXFSZ:
        return SubmissionRejected("eval_file_size", "The evaluation tried to write more than its file limit.")
    if "MemoryError" in output or "bad_alloc" in output or "alloc" in output.lower():
        return SubmissionRejected("eval_memory", "The model needs more memory than the evaluation allows.")
    tail = output.strip().splitlines()[-1:] or ["no output"]
    return SubmissionRejected("eval_crashed", f"The evaluation process failed ({returncode}): {tail[0][:300]}")
