"""Files a run needs on the worker's disk: the release's manifest and audio, the run's directory, its teacher's.

Storage (Django's storage API) is the source of truth; the worker's disk under ``TRAINING_DIR`` is a cache. On
local storage the release is read in place; on object storage its public files are mirrored once. A run's
checkpoint is copied to storage after every epoch, so a run resumes on whichever worker picks it up next.

Two workers may both believe they hold a run (one was paused long enough to be taken for dead), so nothing one
of them writes may land where the other reads: each attempt (claim) of a run has its own folder, on the worker's
disk and in storage (``runs/ID/attempt-N/``), and a stored checkpoint is never overwritten (one name per epoch).
The row, which only the claim that holds it can write, names the files that count; a new checkpoint retires the
previous one only after the row names it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage

from benchmark.models import Release
from training.conf import training_settings
from training.ml.train import CHECKPOINT
from training.models import TrainingRun

CHUNK = 1024 * 1024


def training_dir() -> Path:
    return training_settings().directory


def release_work_dir(release: Release) -> Path:
    """A release's work_dir: training.ml keeps its feature stores and alignments in folders under it keyed by the
    settings each depends on (``features/KEY``, ``alignments/KEY``), so runs share one only when their settings
    agree; it locks the folder while building one."""
    return training_dir() / "releases" / release.version


def run_dir(run: TrainingRun) -> Path:
    """The folder of the run's latest attempt on this machine: the claim's own while it trains, and for a finished
    run (a student's teacher) the one of the claim that finished it."""
    return training_dir() / "runs" / str(run.pk) / f"attempt-{run.attempts}"


def attempt_prefix(run: TrainingRun) -> str:
    """Where the worker of the run's latest attempt stores its files."""
    return f"{run.storage_prefix}/attempt-{run.attempts}"


def _download(name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with default_storage.open(name, "rb") as source, partial.open("wb") as sink:
        shutil.copyfileobj(source, sink, CHUNK)
    partial.replace(target)


def release_manifest(release: Release) -> Path:
    """A local path to the release's public JSONL manifest, with its audio at the relative paths it names."""
    try:
        local = Path(default_storage.path(release.manifest_path))
    except NotImplementedError:  # object storage: mirror the public manifest and its audio
        local = None
    if local is not None and local.exists():
        return local
    mirror = release_work_dir(release) / "files"
    manifest = mirror / "manifest.jsonl"
    if not manifest.exists():
        _download(release.manifest_path, mirror / "manifest.jsonl.download")
        for line in (mirror / "manifest.jsonl.download").read_text(encoding="utf-8").splitlines():
            if line.strip():
                audio = json.loads(line)["audio"]
                if not (mirror / audio).exists():
                    _download(f"{release.storage_prefix}/{audio}", mirror / audio)
        (mirror / "manifest.jsonl.download").replace(manifest)
    return manifest


def store_file(path: Path, name: str) -> str:
    """Copy a local file to ``name`` in storage, replacing what was there; returns the stored name."""
    if default_storage.exists(name):
        default_storage.delete(name)
    with path.open("rb") as handle:
        return default_storage.save(name, File(handle))


def delete_file(name: str) -> None:
    if name and default_storage.exists(name):
        default_storage.delete(name)


def store_checkpoint(run: TrainingRun, *, epoch: int) -> str:
    """A new name for every epoch: the checkpoint the row names now (which a worker taking the run over resumes
    from) is never replaced in place, not even by the worker whose attempt stored it, should that worker carry on after
    the run was taken over."""
    return store_file(run_dir(run) / CHECKPOINT, f"{attempt_prefix(run)}/checkpoint-{epoch}.pt")


def fetch_run(run: TrainingRun) -> Path:
    """The run's directory with its latest checkpoint: the attempt's local one, else the one the row names (a
    resumed run's: its previous attempt's, perhaps on another machine; a finished teacher's)."""
    folder = run_dir(run)
    if not (folder / CHECKPOINT).exists() and run.checkpoint and default_storage.exists(run.checkpoint):
        _download(run.checkpoint, folder / CHECKPOINT)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
