"""Session fixtures for the training tests: a tiny espeak-ng corpus, its feature store and its alignment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from tests.training import corpus
from training.ml.config import Config


def tiny_config(tmp) -> Config:
    config = Config(work_dir=str(tmp))
    config.data.manifest = str(tmp / "tiny.jsonl")  # the store is built from the synthetic corpus, not read
    config.align.rounds = 4
    config.align.hidden = 128
    config.align.layers = 2
    config.align.epochs = 3
    config.align.frames_per_epoch = 0
    config.model.depth = 2
    config.model.width = 128
    config.model.dropout = 0.1
    config.train.epochs = 4
    config.train.batch_size = 128
    config.train.lr = 2e-3
    config.train.progress = False
    config.train.device = "cpu"
    config.decode.acoustic_scales = [1.0]
    config.decode.prior_scales = [0.5, 1.0]
    config.decode.lm_weights = [0.5, 1.0]
    config.decode.insertion_penalties = [0.0, -2.0]
    return config


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The tiny corpus, its store and its alignment, in a folder of this worker's own (tests train runs into it).
    Built once per test session: under pytest-xdist the first worker to get here builds it into the folder the
    workers' base folders share, and the others load that (about 10 CPU-seconds each, otherwise)."""
    if not corpus.espeak_available():
        pytest.skip("espeak-ng is not installed")
    from training.ml.align import save_alignment
    from training.ml.data import store_dir
    from training.ml.pipeline import alignment_dir

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 2)))
    tmp = tmp_path_factory.mktemp("tiny")
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: nothing to share
        built = _build_tiny(tmp)
    else:
        shared = tmp_path_factory.getbasetemp().parent / "tiny-built.pt"  # this run's, not a previous run's
        with FileLock(f"{shared}.lock"):
            if not shared.is_file():
                torch.save(_build_tiny(shared.parent / "tiny-build"), shared)
        built = torch.load(shared, weights_only=False)
    config = tiny_config(tmp)
    store_dir(config).mkdir(parents=True)
    built["store"].save(store_dir(config) / "store.pt")
    alignment_dir(config).mkdir(parents=True)
    save_alignment(alignment_dir(config) / "alignment.pt", built["labels"], built["history"])
    return {"config": config, **built, "dir": tmp}


def _build_tiny(folder: Path) -> dict:
    from training.ml.align import align_corpus
    from training.ml.data import build_store

    config = tiny_config(folder)
    data = corpus.build()
    store = build_store(data.utterances, data.waves, config)
    labels, history = align_corpus(store, config, progress=False)
    return {"corpus": data, "store": store, "labels": labels, "history": history}


@pytest.fixture
def run_settings(settings, tmp_path):
    """Training runs in a test: their files under tmp_path, a base config that trains in seconds."""
    from tests.training.runs import write_base_config

    settings.TRAINING_DIR = tmp_path / "training"
    settings.TRAINING_BASE_CONFIG = str(write_base_config(tmp_path))
    settings.TRAINING_PROGRESS_SECONDS = 0


@pytest.fixture
def ready_release_row(db):
    """A ready release v1 as a row only: refusals are decided before any of its files is read, and building a
    real one for each of the cases below cost the suite about a minute."""
    from benchmark.models import Release, ReleaseStatus

    return Release.objects.create(version="v1", status=ReleaseStatus.READY)


@pytest.fixture
def release(db):
    """Release v1: 16 speakers of speech-like audio, 3 clips each."""
    from tests.benchmark.conftest import build, make_corpus

    make_corpus(speakers=16, clips_each=3)
    return build("v1")
