"""Session fixtures for the training tests: a tiny espeak-ng corpus, its feature store and its alignment."""

from __future__ import annotations

import os

import pytest
import torch

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
    if not corpus.espeak_available():
        pytest.skip("espeak-ng is not installed")
    from training.ml.align import align_corpus, save_alignment
    from training.ml.data import build_store, store_dir
    from training.ml.pipeline import alignment_dir

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 2)))
    tmp = tmp_path_factory.mktemp("tiny")
    config = tiny_config(tmp)
    data = corpus.build()
    store = build_store(data.utterances, data.waves, config)
    store_dir(config).mkdir(parents=True)
    store.save(store_dir(config) / "store.pt")
    labels, history = align_corpus(store, config, progress=False)
    alignment_dir(config).mkdir(parents=True)
    save_alignment(alignment_dir(config) / "alignment.pt", labels, history)
    return {"config": config, "corpus": data, "store": store, "labels": labels, "history": history, "dir": tmp}


@pytest.fixture
def run_settings(settings, tmp_path):
    """Training runs in a test: their files under tmp_path, a base config that trains in seconds."""
    from tests.training.runs import write_base_config

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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
