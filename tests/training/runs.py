"""Helpers for the training-run tests: a small release and a base config that trains on it in seconds."""

from __future__ import annotations

import json
from pathlib import Path

TINY_BASE = {
    "align": {"rounds": 1, "hidden": 32, "layers": 1, "epochs": 1, "frames_per_epoch": 0, "hmm_stages": [4, 2]},
    "model": {"kind": "dnn", "depth": 2, "width": 32, "dropout": 0.0, "bottleneck": 8},
    "train": {"epochs": 2, "frames_per_epoch": 0, "batch_size": 128, "lr": 0.002, "device": "cpu"},
    "decode": {"acoustic_scales": [1.0], "prior_scales": [1.0], "lm_weights": [1.0], "insertion_penalties": [0.0]},
}


def write_base_config(folder: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY_BASE))
    for section, values in changes.items():
        config[section].update(values)
    path = folder / "base.json"
    path.write_text(json.dumps(config))
    return path
