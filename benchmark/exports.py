"""Release exports, all written from one frozen list of entries: JSONL, TIMIT-like tree, Kaldi, Lhotse, HF Parquet.

Plain Python, no Django: the builder freezes the entries, then each writer here turns them into one format under
a staging folder. Paths inside every format are relative to the release root, so an unpacked release works
wherever it lies (Kaldi's ``wav.scp`` is read from the release root; Lhotse takes ``with_path_prefix``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

SAMPLE_RATE = 16_000
# A shard holds at most this much audio, as the Hub's own conversions keep shards to a few hundred MB.
PARQUET_SHARD_BYTES = 500 * 1024 * 1024
PARQUET_ROW_GROUP = 100
KALDI_GENDERS = {"female": "f", "male": "m"}
SHARED_PROMPT_TYPE = "shared"  # contributors.models.PromptType.SHARED (a plain string: no Django here)


@dataclass(frozen=True)
class ReleaseEntry:
    """One clip of a release as every export sees it. Demographics are the *published* values: empty when not
    given or withheld for a small group."""

    utt_id: str
    split: str
    speaker_id: str
    text: str  # the prompt as shown to the reader
    words: list[str]  # normalised, lower case, numbers spelled out
    phones: list[list[str]]  # canonical ARPAbet per word, no stress
    audio: str  # the FLAC, relative to the release root (private root for the hidden split)
    sha256: str  # of the FLAC
    num_samples: int
    duration_s: float
    prompt_id: int
    prompt_type: str
    provenance: str
    votes_counted: int
    votes_valid_counted: int
    score: float
    gender: str = ""
    age_band: str = ""
    age_group: str = ""
    accent: str = ""
    first_language: str = ""
    alignment: list[tuple[int, int, str]] | None = field(default=None)  # (start sample, end sample, phone)

    @property
    def transcript(self) -> str:
        return " ".join(self.words)

    @property
    def phone_string(self) -> str:
        return " ".join(p for word in self.phones for p in word)

    def as_json(self) -> dict:
        """The entry as its manifest line holds it (equal to that line read back: lists, not tuples)."""
        data = asdict(self)
        data["sample_rate"] = SAMPLE_RATE
        if data["alignment"] is None:
            del data["alignment"]
        else:
            data["alignment"] = [list(a) for a in data["alignment"]]
        return data


def scored_entries(entries: Iterable[ReleaseEntry]) -> list[ReleaseEntry]:
    """The entries a PER is computed on and the phone bigram is estimated from: TIMIT's protocol drops the shared
    sentences (its SA; Kaldi's ``-not -iname 'SA*'``), which every speaker reads, so that no scored test sentence
    is one that every train speaker read. They stay in the released files, as TIMIT ships its SA files."""
    return [e for e in entries if e.prompt_type != SHARED_PROMPT_TYPE]


def bigram_transcripts(entries: Iterable[ReleaseEntry]) -> list[list[list[str]]]:
    """Per-word phones of the train split's entries without the shared prompts: what the leaderboard's
    ``hmm_bigram`` decoder estimates its phone bigram from (``evaluation.decoding.hmm_bigram_decoder``)."""
    return [[list(w) for w in e.phones] for e in scored_entries(entries) if e.split == "train"]


def entry_from_json(data: dict) -> ReleaseEntry:
    data = dict(data)
    data.pop("sample_rate", None)
    if data.get("alignment") is not None:
        data["alignment"] = [tuple(a) for a in data["alignment"]]
    return ReleaseEntry(**data)


def by_split(entries: Iterable[ReleaseEntry]) -> dict[str, list[ReleaseEntry]]:
    grouped: dict[str, list[ReleaseEntry]] = defaultdict(list)
    for entry in entries:
        grouped[entry.split].append(entry)
    return {split: sorted(items, key=lambda e: e.utt_id) for split, items in grouped.items()}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, entries: Sequence[ReleaseEntry]) -> Path:
    lines = (json.dumps(e.as_json(), ensure_ascii=False, sort_keys=True) for e in sorted(entries, key=_order))
    return _write(path, "".join(line + "\n" for line in lines))


def read_jsonl(path: Path) -> list[ReleaseEntry]:
    with path.open(encoding="utf-8") as handle:
        return [entry_from_json(json.loads(line)) for line in handle if line.strip()]


def _order(entry: ReleaseEntry) -> tuple[str, str]:
    return (entry.split, entry.utt_id)


# --- TIMIT-like tree -----------------------------------------------------------------------------------------------
def timit_audio_path(split: str, speaker_id: str, utt_id: str) -> str:
    return f"timit/{split}/{speaker_id}/{utt_id}.flac"


def write_timit_labels(root: Path, entries: Sequence[ReleaseEntry]) -> list[Path]:
    """Beside each ``UTT.flac``: ``.txt`` (``0 N prompt``, as TIMIT), ``.wrd`` and, once aligned, ``.phn``.

    Without an alignment word and phone times are unknown: ``.wrd`` then lists the words one a line with their
    canonical phones (``word PH PH ...``) and ``.phn`` is absent (the datasheet says so). With one, ``.phn`` holds
    ``start end phone`` in samples, TIMIT's format, and ``.wrd`` the words one a line."""
    written: list[Path] = []
    for e in entries:
        stem = root / Path(e.audio).with_suffix("")
        written.append(_write(stem.with_suffix(".txt"), f"0 {e.num_samples} {e.text}\n"))
        if e.alignment:
            written.append(_write(stem.with_suffix(".phn"), "".join(f"{s} {t} {p}\n" for s, t, p in e.alignment)))
            written.append(_write(stem.with_suffix(".wrd"), "".join(f"{w}\n" for w in e.words)))
        else:
            lines = (f"{w} {' '.join(p)}\n" for w, p in zip(e.words, e.phones, strict=True))
            written.append(_write(stem.with_suffix(".wrd"), "".join(lines)))
    return written


# --- Kaldi ---------------------------------------------------------------------------------------------------------
def write_kaldi(root: Path, split: str, entries: Sequence[ReleaseEntry]) -> list[Path]:
    """A Kaldi data directory: ``wav.scp`` (a flac pipe, run from the release root), ``text``, ``utt2spk``,
    ``spk2utt``, ``utt2dur`` and ``spk2gender`` when every speaker's gender is published as f or m.

    Utterance ids start with the speaker id (fixed length), so sorting by utterance sorts by speaker too, as
    ``utils/validate_data_dir.sh`` requires."""
    folder = root / "kaldi" / split
    entries = sorted(entries, key=lambda e: e.utt_id)
    spk2utt: dict[str, list[str]] = defaultdict(list)
    genders: dict[str, str] = {}
    for e in entries:
        spk2utt[e.speaker_id].append(e.utt_id)
        genders[e.speaker_id] = KALDI_GENDERS.get(e.gender, "")
    files = [
        _write(folder / "wav.scp", "".join(f"{e.utt_id} flac -c -d -s {e.audio} |\n" for e in entries)),
        _write(folder / "text", "".join(f"{e.utt_id} {e.transcript}\n" for e in entries)),
        _write(folder / "utt2spk", "".join(f"{e.utt_id} {e.speaker_id}\n" for e in entries)),
        _write(folder / "utt2dur", "".join(f"{e.utt_id} {e.duration_s:.4f}\n" for e in entries)),
        _write(folder / "spk2utt", "".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items()))),
    ]
    if genders and all(genders.values()):
        files.append(_write(folder / "spk2gender", "".join(f"{s} {g}\n" for s, g in sorted(genders.items()))))
    return files


# --- Lhotse --------------------------------------------------------------------------------------------------------
def lhotse_paths(split: str) -> tuple[str, str]:
    return (f"lhotse/openphone_recordings_{split}.jsonl.gz", f"lhotse/openphone_supervisions_{split}.jsonl.gz")


def write_lhotse(root: Path, split: str, entries: Sequence[ReleaseEntry]) -> list[Path]:
    """Lhotse ``RecordingSet`` and ``SupervisionSet`` manifests (its JSONL serialisation, written without
    importing lhotse); audio sources are relative to the release root."""
    recordings_name, supervisions_name = lhotse_paths(split)
    recordings = []
    supervisions = []
    for e in sorted(entries, key=lambda e: e.utt_id):
        recordings.append(
            {
                "id": e.utt_id,
                "sources": [{"type": "file", "channels": [0], "source": e.audio}],
                "sampling_rate": SAMPLE_RATE,
                "num_samples": e.num_samples,
                "duration": e.num_samples / SAMPLE_RATE,
                "channel_ids": [0],
            }
        )
        supervision = {
            "id": e.utt_id,
            "recording_id": e.utt_id,
            "start": 0.0,
            "duration": e.num_samples / SAMPLE_RATE,
            "channel": 0,
            "text": e.transcript,
            "language": "English",
            "speaker": e.speaker_id,
            "custom": {"phones": e.phone_string, "prompt": e.text},
        }
        if e.gender:
            supervision["gender"] = e.gender
        supervisions.append(supervision)
    return [
        _write_gz_jsonl(root / recordings_name, recordings),
        _write_gz_jsonl(root / supervisions_name, supervisions),
    ]


def _write_gz_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same rows give the same bytes, so a rebuilt release has the same checksums.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        for row in rows:
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    return path


# --- Hugging Face Parquet ------------------------------------------------------------------------------------------
HF_FEATURES = {
    "id": {"dtype": "string", "_type": "Value"},
    "audio": {"sampling_rate": SAMPLE_RATE, "_type": "Audio"},
    "speaker_id": {"dtype": "string", "_type": "Value"},
    "text": {"dtype": "string", "_type": "Value"},
    "prompt": {"dtype": "string", "_type": "Value"},
    "phones": {"dtype": "string", "_type": "Value"},
    "gender": {"dtype": "string", "_type": "Value"},
    "age_group": {"dtype": "string", "_type": "Value"},
    "accent": {"dtype": "string", "_type": "Value"},
    "duration_s": {"dtype": "float32", "_type": "Value"},
}


def hf_schema():
    import pyarrow as pa

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("audio", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("speaker_id", pa.string()),
            ("text", pa.string()),
            ("prompt", pa.string()),
            ("phones", pa.string()),
            ("gender", pa.string()),
            ("age_group", pa.string()),
            ("accent", pa.string()),
            ("duration_s", pa.float32()),
        ]
    )
    # As `datasets` stores them on the Hub: the features in the schema metadata, so Audio is recognised.
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})


def write_parquet(root: Path, split: str, entries: Sequence[ReleaseEntry], *, audio_root: Path) -> list[Path]:
    """``hf/data/{split}-0000i-of-0000n.parquet`` with the FLAC bytes embedded, one row group per 100 clips."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = sorted(entries, key=lambda e: e.utt_id)
    total = sum((audio_root / e.audio).stat().st_size for e in entries)
    shards = max(1, math.ceil(total / PARQUET_SHARD_BYTES))
    per_shard = math.ceil(len(entries) / shards) if entries else 0
    schema = hf_schema()
    written: list[Path] = []
    for index in range(shards):
        path = root / "hf" / "data" / f"{split}-{index:05d}-of-{shards:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        chunk = entries[index * per_shard : (index + 1) * per_shard]
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for start in range(0, max(len(chunk), 1), PARQUET_ROW_GROUP):
                rows = chunk[start : start + PARQUET_ROW_GROUP]
                columns = {
                    "id": [e.utt_id for e in rows],
                    "audio": [{"bytes": (audio_root / e.audio).read_bytes(), "path": Path(e.audio).name} for e in rows],
                    "speaker_id": [e.speaker_id for e in rows],
                    "text": [e.transcript for e in rows],
                    "prompt": [e.text for e in rows],
                    "phones": [e.phone_string for e in rows],
                    "gender": [e.gender for e in rows],
                    "age_group": [e.age_group for e in rows],
                    "accent": [e.accent for e in rows],
                    "duration_s": [e.duration_s for e in rows],
                }
                writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        written.append(path)
    return written


def write_hf_card(root: Path, splits: Sequence[str], version: str) -> Path:
    """The dataset card's YAML header that maps splits to shards, as the Hub reads it."""
    configs = "".join(f"  - split: {s}\n    path: data/{s}-*.parquet\n" for s in splits)
    return _write(
        root / "hf" / "README.md",
        f"---\nlicense: cc0-1.0\nlanguage:\n- en\npretty_name: OpenPhone {version}\nconfigs:\n- config_name: default\n"
        f"  data_files:\n{configs}---\n\nOpenPhone release {version}: see ../README.md for the datasheet.\n",
    )
