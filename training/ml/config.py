"""Every setting of a run in one dataclass, with its default and why; a run's override file holds what differs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MANIFEST = "../shared/data/speechocean762-train/manifest.tsv"


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    frame_length: int = 400  # 25 ms
    frame_shift: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 8000.0
    preemphasis: float = 0.97
    remove_dc: bool = True
    window: str = "hamming"  # hamming | hann | povey
    context: int = 7  # splice +-7 frames: 15 x 123 = 1,845 inputs


@dataclass
class DataConfig:
    manifest: str = DEFAULT_MANIFEST  # a release's manifest.jsonl, or a corpus TSV (utt_id speaker ... text)
    lexicon: str = ""  # word -> ARPAbet lines; empty: lexicon.txt beside the manifest when present
    split_key: str = "speechocean762-train"  # HMAC key of speech.splits: the same key gives the same split
    max_utterances: int = 0  # 0: all (small values for smoke runs)


@dataclass
class AlignConfig:
    method: str = "hmm"  # hmm: monophone HMM by EM (training/ml/hmm_align.py) | mlp: flat start (docs/training.md)
    hmm_stages: list[int] = field(default_factory=lambda: [6, 3, 3, 3])  # hmm: EM passes at 1, 2, 4, 8 Gaussians
    rounds: int = 4  # MLP Viterbi realignment rounds after the start (HMM or flat), fewer when the labels settle
    settle: float = 0.02  # stop when fewer than this fraction of frames change phone in a round
    hidden: int = 512  # the aligner's frame classifier: a small MLP retrained each round
    layers: int = 2
    epochs: int = 2
    frames_per_epoch: int = 300_000
    silence_penalty: float = 0.0  # log-score added for each optional silence taken (negative discourages)
    seed: int = 0  # the aligner's seed; 0: train.seed (the finding fixes it, so seeds vary the models only)
    # CPU threads the aligner runs on. Its sums (EM statistics, the classifiers' gradients) are split across
    # threads, so each count rounds differently and EM carries that into different labels (8 % of frames apart
    # at 1 and 2 threads, docs/training.md): fixed here, and part of the alignment's key, whatever the machine.
    threads: int = 1


@dataclass
class ModelConfig:
    kind: str = "dnn"  # dnn | cnn | snn | ensemble | blstm
    depth: int = 3  # dnn: hidden layers; blstm: bidirectional LSTM layers
    width: int = 2000  # dnn: units per hidden layer; snn: hidden units H; blstm: units per direction
    dropout: float = 0.2
    bottleneck: int = 250  # snn: linear bottleneck k factorising the input weights (0: none)
    conv_channels: int = 128  # cnn: filters over frequency
    conv_kernel: int = 8  # cnn: mel bands per filter
    pool: int = 3  # cnn: max-pooling over frequency
    members: list[str] = field(default_factory=list)  # ensemble: run directories of the members


@dataclass
class TrainConfig:
    objective: str = "labels"  # labels | mimic_l2 (Ba & Caruana) | mimic_soft (Hinton, at temperature) | ctc (blstm)
    teacher: str = ""  # mimic: the teacher's run directory
    temperature: float = 2.0
    center_logits: bool = False  # mimic_l2: regress logits minus their per-frame mean (False: the paper's raw logits)
    # mimic: also learn from the teacher's logits on speed-perturbed copies of the train split (e.g. [0.9, 1.1]):
    # unlabelled frames, the paper's lever (training/ml/transfer.py)
    transfer_speeds: list[float] = field(default_factory=list)
    epochs: int = 10
    frames_per_epoch: int = 0  # 0: every training frame each epoch; else a fresh random subset
    batch_size: int = 256  # frames per batch (frame models)
    sequence_batch: int = 16  # utterances per batch (blstm: whole utterances, padded)
    lr: float = 1e-3
    lr_decay: float = 0.7  # multiply the learning rate by this each epoch after the first
    weight_decay: float = 0.0
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    progress: bool = True


@dataclass
class DecodeConfig:
    acoustic_scales: list[float] = field(default_factory=lambda: [0.5, 1.0])
    prior_scales: list[float] = field(default_factory=lambda: [0.5, 1.0])
    lm_weights: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    insertion_penalties: list[float] = field(default_factory=lambda: [0.0, -2.0, -4.0])
    self_loop: float = 0.0  # 0: from the training alignments' mean state durations


@dataclass
class Config:
    work_dir: str = "var/training"
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        config = cls()
        apply_overrides(config, values)
        return config


def _set(obj: Any, key: str, value: Any) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    if key not in names:
        raise KeyError(f"{type(obj).__name__} has no setting {key!r}")
    current = getattr(obj, key)
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise TypeError(f"{key} takes a mapping")
        for sub_key, sub_value in value.items():
            _set(current, sub_key, sub_value)
        return
    setattr(obj, key, _coerce(current, value))


def _coerce(current: Any, value: Any) -> Any:
    if isinstance(value, str) and not isinstance(current, str):
        value = json.loads(value)  # command-line strings: 3, 0.5, true, [1, 2]
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, int):
        return int(value)
    return value


def apply_overrides(config: Config, values: dict[str, Any]) -> Config:
    """Nested mapping or dotted keys ('model.width': 512) onto the config, refusing unknown names."""
    for key, value in values.items():
        obj: Any = config
        *path, last = key.split(".")
        for part in path:
            obj = getattr(obj, part)
        _set(obj, last, value)
    return config


def load_config(files: list[str | Path] = (), overrides: list[str] = ()) -> Config:  # type: ignore[assignment]
    """Defaults, then each JSON file in turn, then 'a.b=value' overrides from the command line."""
    config = Config()
    for path in files:
        apply_overrides(config, json.loads(Path(path).read_text()))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        apply_overrides(config, {key.strip(): value.strip()})
    return config


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2) + "\n")


def canonical_json(values: Any) -> str:
    """One spelling per value: sorted keys, no spaces, so equal settings always give equal text."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def config_digest(values: Any) -> str:
    """The key of an artefact built from ``values`` (exactly the settings it depends on): 16 hex digits."""
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()[:16]


# Where and how a run executes, not what it computes: a run resumed on another machine (other paths, another
# device) is still the same run. Everything else must match the checkpoint's config for a resume.
LOCATION_SETTINGS = frozenset(
    {"work_dir", "data.manifest", "data.lexicon", "train.teacher", "model.members", "train.device", "train.progress"}
)


class InvalidConfig(ValueError):
    """Settings that cannot train together (a BiLSTM mimic, CTC on a frame model); the message says which."""


class ConfigMismatch(ValueError):
    """A run directory holds a checkpoint trained under settings other than the ones given."""


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """'setting: stored -> given' for every setting (location settings aside) on which two configs differ. A
    setting the stored config predates counts as its default, which is what that checkpoint trained under."""
    defaults = _flatten(Config().to_dict())
    old, new = defaults | _flatten(stored), _flatten(given)
    return [
        f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
        for key in sorted(old.keys() | new.keys())
        if key not in LOCATION_SETTINGS and old.get(key) != new.get(key)
    ]
