"""Corpus reading, the speaker-disjoint split, and the cached feature store that training reads frames from.

Until releases exist the input is the speechocean762 manifest (utt_id speaker gender age audio duration_s
text); the split is `speech.splits.assign_splits`, the code the release builder uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr
import torch
from tqdm import tqdm

from speech import corpus
from speech.lexicon import fallback_lexicon, read_lexicon, transcript_words
from speech.splits import SplitSpeaker, assign_splits
from speech.text import normalise_words
from training.ml.config import Config, FeatureConfig, config_digest
from training.ml.features import FeatureExtractor, Normaliser, feature_dim, splice_indices


@dataclass
class Utterance:
    utt_id: str
    speaker: str
    audio: str  # absolute path
    text: str
    gender: str = ""
    age: int = 0
    split: str = ""
    words: list[list[str]] = field(default_factory=list)  # canonical stressless phones per word
    sha256: str = ""  # of the audio file, when the manifest gives it (releases do)


def read_manifest(path: str | Path, max_utterances: int = 0) -> list[Utterance]:
    """An outside corpus's TSV manifest (speech.corpus, the format the platform imports), audio beside it."""
    path = Path(path)
    utterances = []
    for row in corpus.read_manifest(path):
        age = row.get("age", "") or "0"
        utterances.append(
            Utterance(
                utt_id=row["utt_id"],
                speaker=row["speaker"],
                audio=str((path.parent / row["audio"]).resolve()),
                text=row["text"],
                gender=row.get("gender", ""),
                age=int(age) if age.isdigit() else 0,
            )
        )
        if len(utterances) == max_utterances:
            break
    return utterances


def read_release_manifest(path: str | Path, max_utterances: int = 0) -> list[Utterance]:
    """A corpus release's public JSONL manifest: splits and canonical phones come with it, audio beside it."""
    path = Path(path)
    utterances = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                utterances.append(
                    Utterance(
                        utt_id=row["utt_id"],
                        speaker=row["speaker_id"],
                        audio=str((path.parent / row["audio"]).resolve()),
                        text=row["text"],
                        gender=row.get("gender", ""),
                        split=row["split"],
                        words=[list(word) for word in row["phones"]],
                        sha256=row.get("sha256", ""),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a release manifest entry ({exc})") from exc
    return utterances[:max_utterances] if max_utterances else utterances


def read_corpus(config: Config) -> list[Utterance]:
    """Utterances with split and pronunciations: a release manifest (.jsonl) carries both; the shared corpus's
    TSV manifest gets the speaker-disjoint split of speech.splits and pronunciations from the lexicon."""
    manifest = Path(config.data.manifest)
    if manifest.suffix == ".jsonl":
        return read_release_manifest(manifest, config.data.max_utterances)
    utterances = read_manifest(manifest, config.data.max_utterances)
    split_speakers(utterances, config.data.split_key)
    attach_pronunciations(utterances, config.data.lexicon or manifest.parent / "lexicon.txt")
    return utterances


def split_speakers(utterances: list[Utterance], key: str) -> None:
    """Set each utterance's split, speaker-disjoint and balanced by gender and children/adults."""
    speakers = {u.speaker: SplitSpeaker(u.speaker, u.gender, corpus.age_band(u.age)) for u in utterances}
    assignment = assign_splits(speakers.values(), key=key.encode())
    for u in utterances:
        u.split = assignment[u.speaker]


def attach_pronunciations(utterances: list[Utterance], lexicon_path: str | Path | None) -> None:
    lexicon = read_lexicon(lexicon_path) if lexicon_path and Path(lexicon_path).exists() else {}
    words = {w for u in utterances for w in normalise_words(u.text)} | {
        w.lower() for u in utterances for w in u.text.split()
    }
    fallback = fallback_lexicon(lexicon, words)
    for u in utterances:
        u.words = transcript_words(u.text, fallback)


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate).astype(np.float32)
    return audio


@torch.no_grad()
def compute_features(waves: list[np.ndarray], config: FeatureConfig, progress: bool = False) -> list[torch.Tensor]:
    """(T_i, 123) per wave, in input order, one utterance at a time: the extractor works through cache-sized
    blocks of frames anyway, and a padded batch of utterances only added frames and the padding's copies
    (it was 0.6x the speed of one at a time)."""
    extractor = FeatureExtractor(config)
    out = []
    with torch.no_grad():
        for wave in tqdm(waves, desc="features") if progress else waves:
            if len(wave) < config.frame_length:  # not one whole frame
                out.append(torch.empty(0, feature_dim(config)))
                continue
            out.append(extractor(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None])[0])
    return out


@dataclass
class FrameStore:
    """Every utterance's 123-dim frames concatenated (normalised with training statistics) plus utterance metadata.

    Inputs are spliced on the fly: a batch of frame positions gathers its +-context neighbours, clamped inside
    its own utterance, so 1,845-dim inputs are never materialised.
    """

    utterances: list[Utterance]
    frames: torch.Tensor  # (N, 123) normalised
    offsets: torch.Tensor  # (U + 1,) utterance u has frames offsets[u]:offsets[u+1]
    normaliser: Normaliser
    context: int = 7

    def __post_init__(self) -> None:
        lengths = self.offsets[1:] - self.offsets[:-1]
        self.frame_utt = torch.repeat_interleave(torch.arange(len(self.utterances)), lengths)

    @property
    def input_dim(self) -> int:
        return self.frames.shape[1] * (2 * self.context + 1)

    def to(self, device: torch.device | str) -> FrameStore:
        self.frames = self.frames.to(device)
        self.offsets = self.offsets.to(device)
        self.frame_utt = self.frame_utt.to(device)
        return self

    def utterance_ids(self, split: str | None = None) -> list[int]:
        return [i for i, u in enumerate(self.utterances) if split is None or u.split == split]

    def frame_positions(self, utt_ids: list[int]) -> torch.Tensor:
        device = self.offsets.device
        if not utt_ids:
            return torch.empty(0, dtype=torch.long, device=device)
        return torch.cat([torch.arange(int(self.offsets[u]), int(self.offsets[u + 1]), device=device) for u in utt_ids])

    def inputs(self, positions: torch.Tensor) -> torch.Tensor:
        """(B,) frame positions -> (B, 1845) spliced inputs."""
        utt = self.frame_utt[positions]
        index = splice_indices(positions, self.offsets[utt], self.offsets[utt + 1], self.context)
        return self.frames[index].reshape(len(positions), -1)

    def utterance_inputs(self, u: int) -> torch.Tensor:
        return self.inputs(torch.arange(int(self.offsets[u]), int(self.offsets[u + 1]), device=self.offsets.device))

    @classmethod
    def from_features(
        cls, utterances: list[Utterance], feats: list[torch.Tensor], normaliser: Normaliser, context: int
    ) -> FrameStore:
        """One utterance's (T_i, 123) features per utterance, concatenated and normalised with ``normaliser``."""
        offsets = torch.zeros(len(feats) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.tensor([len(f) for f in feats], dtype=torch.long), 0)
        with torch.no_grad():
            frames = normaliser(torch.cat(feats)) if feats else torch.empty(0, len(normaliser.mean))
        return cls(utterances, frames, offsets, normaliser, context)

    def save(self, path: str | Path) -> None:
        torch.save(
            {
                "utterances": [asdict(u) for u in self.utterances],
                "frames": self.frames.cpu(),
                "offsets": self.offsets.cpu(),
                "mean": self.normaliser.mean,
                "std": self.normaliser.std,
                "context": self.context,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> FrameStore:
        data = torch.load(path, weights_only=True)
        return cls(
            utterances=[Utterance(**u) for u in data["utterances"]],
            frames=data["frames"],
            offsets=data["offsets"],
            normaliser=Normaliser(data["mean"], data["std"]),
            context=int(data["context"]),
        )


def build_store(
    utterances: list[Utterance], waves: list[np.ndarray], config: Config, progress: bool = False
) -> FrameStore:
    """Features for every utterance, normalised with the statistics of the training split."""
    feats = compute_features(waves, config.features, progress=progress)
    keep = [i for i, f in enumerate(feats) if len(f) > 0]
    utterances = [utterances[i] for i in keep]
    feats = [feats[i] for i in keep]
    train = [f for f, u in zip(feats, utterances, strict=True) if u.split == "train"]
    if not train:
        raise MissingSplit(_missing("train", utterances, "the feature normaliser"))
    return FrameStore.from_features(utterances, feats, Normaliser.fit(torch.cat(train)), config.features.context)


def _file_sha256(path: str | Path) -> str:
    """The content of a file a store is built from ('' when there is none)."""
    path = Path(path)
    if not path.is_file():
        return ""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# How the extractor computes, where the settings do not say: 2 since its CPU path runs on one thread
# (a store made before could differ from a fresh one in the last bit of some frames, under the same settings).
EXTRACTOR_VERSION = 2


def store_settings(config: Config) -> dict[str, Any]:
    """Exactly what a feature store depends on: the data settings and the content of the manifest and lexicon they
    name, and the feature settings but the splice context (frames are stored unspliced; inputs splice on the fly)."""
    manifest = Path(config.data.manifest)
    data = asdict(config.data)
    if manifest.suffix == ".jsonl":  # a release carries its split and pronunciations: no key, no lexicon read
        del data["split_key"], data["lexicon"]
        lexicon = ""
    else:
        lexicon = config.data.lexicon or str(manifest.parent / "lexicon.txt")
    features = {k: v for k, v in asdict(config.features).items() if k != "context"}
    return {
        "extractor": EXTRACTOR_VERSION,
        "data": data,
        "manifest_sha256": _file_sha256(manifest),
        "lexicon_sha256": _file_sha256(lexicon) if lexicon else "",
        "features": features,
    }


def store_dir(config: Config) -> Path:
    """work_dir/features/KEY: one folder per distinct store, so runs that differ in data or features never share."""
    return Path(config.work_dir) / "features" / config_digest(store_settings(config))


class MissingSplit(ValueError):
    """The corpus lacks a split that training estimates something on; nothing falls back to other splits."""


def _missing(split: str, utterances: list[Utterance], needed_for: str) -> str:
    found = sorted({u.split or "(none)" for u in utterances})
    return (
        f"The corpus has no {split} split (its {len(utterances)} utterances are in: {', '.join(found) or 'none'}), "
        f"and nothing falls back to the other splits: {needed_for} must come from the {split} split alone."
    )


def require_splits(store: FrameStore, splits: tuple[str, ...] = ("train", "dev")) -> None:
    """Raise MissingSplit, with a sentence naming it, when any of ``splits`` has no utterance."""
    for split in splits:
        if not store.utterance_ids(split):
            needed = {
                "train": "every model, the normaliser, the aligner, the state prior and the phone bigram",
                "dev": "the decoding weights",
            }.get(split, "this stage")
            raise MissingSplit(_missing(split, store.utterances, needed))


def prepare_corpus(config: Config, progress: bool = True) -> FrameStore:
    """Manifest (release JSONL or corpus TSV) -> split -> pronunciations -> features, cached in
    work_dir/features/KEY/store.pt (skipped when present); KEY hashes exactly the settings the store depends on."""
    folder = store_dir(config)
    path = folder / "store.pt"
    if path.exists():
        store = FrameStore.load(path)
        store.context = config.features.context  # splicing is not part of the store: each run's own context
        return store
    utterances = read_corpus(config)
    waves = [
        load_audio(u.audio, config.features.sample_rate) for u in tqdm(utterances, desc="audio", disable=not progress)
    ]
    store = build_store(utterances, waves, config, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(json.dumps(store_settings(config), indent=2, sort_keys=True) + "\n")
    store.save(path)
    return store
