"""Release exports, all written from one frozen list of entries: JSONL, TIMIT tree, Kaldi, Lhotse, HF Parquet.

Plain Python, no Django: the builder freezes the entries, then each writer here turns them into one format under
a staging folder, through the builder's :class:`~benchmark.releases.packaging.FileWriter` (which keeps each file's
checksum). Paths inside every format are relative to the release root, so an unpacked release works wherever it
lies (Kaldi's ``wav.scp`` is read from the release root; Lhotse takes ``with_path_prefix``).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath

from benchmark.releases.packaging import FileWriter
from speech.phones import SILENCE

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
    audio: str  # the TIMIT tree's WAV (or FLAC), relative to the release root (private root for the hidden split)
    sha256: str  # of the clip as the platform stores it (FLAC): its identity across releases
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
    # Where the clip comes from: "openphone" (recorded on the platform, CC0) or the imported corpus's name, with
    # the SPDX id of the licence it is published under. Empty in manifests from before sources were recorded.
    source: str = ""
    licence: str = ""
    alignment: list[tuple[int, int, str]] | None = field(default=None)  # (start sample, end sample, phone)

    @property
    def transcript(self) -> str:
        return " ".join(self.words)

    @property
    def phone_string(self) -> str:
        return " ".join(p for word in self.phones for p in word)

    def as_json(self) -> dict:
        """The entry as its manifest line holds it (equal to that line read back: lists, not tuples). A shallow
        copy of the fields (``dataclasses.asdict`` deep-copies every list, and was a third of the text exports)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["words"], data["phones"] = list(self.words), [list(w) for w in self.phones]
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
    ``hmm_bigram`` decoder estimates its phone bigram from (``speech.decoding.hmm_bigram_decoder``)."""
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


def write_jsonl(out: FileWriter, rel: str, entries: Sequence[ReleaseEntry]) -> str:
    lines = (json.dumps(e.as_json(), ensure_ascii=False, sort_keys=True) for e in sorted(entries, key=_order))
    out.put(rel, "".join(line + "\n" for line in lines))
    return rel


def _order(entry: ReleaseEntry) -> tuple[str, str]:
    return (entry.split, entry.utt_id)


# --- TIMIT tree ----------------------------------------------------------------------------------------------------
# LDC's layout under timit/data/ (Kaldi's timit recipe reads timit/data, Lhotse's prepare_timit reads timit/, whose
# data/ is where the TIMIT copies it expects keep TRAIN and TEST), and the flat lower-case layout NLTK's
# TimitCorpusReader reads (dr1-fcjf0/sa1.phn, spkrinfo.txt) under timit/nltk/, labels only: its audio is the WAV.
TIMIT_ROOT = "timit/data"
NLTK_ROOT = "timit/nltk"
# TIMIT has only TRAIN and TEST; its recipes take their dev speakers from TEST by a speaker list (Kaldi's
# conf/dev_spk.list, Lhotse's get_speakers), so dev goes there too and DOC/ carries our two lists in that shape.
TIMIT_DIRS = {"train": "TRAIN", "dev": "TEST", "test": "TEST"}
TIMIT_USE = {"TRAIN": "TRN", "TEST": "TST"}
AUDIO_FORMATS = {"wav": ".WAV", "flac": ".FLAC"}
# TIMIT's sentence types: SA read by every speaker (recipes drop them: Kaldi's -not -iname 'SA*'), SX chosen for
# phonetic coverage, SI phonetically diverse.
SENTENCE_TYPES = {SHARED_PROMPT_TYPE: "SA", "coverage": "SX", "diverse": "SI"}
TIMIT_SEX = {"male": "M", "female": "F"}  # TIMIT names start with the sex; X: other, not given or withheld
NOT_GROUPED = 0  # DR0: accent not given or withheld


@dataclass(frozen=True)
class TimitSpeaker:
    name: str  # sex letter + the pseudonymous id in upper-case letters and digits: MABCDEFGH
    group: int  # the dialect-region level, DR<group>: the published accent, numbered (DOC/DIALECTS.TXT)


def timit_speaker_name(speaker_id: str, gender: str) -> str:
    """Only letters and digits: NLTK's reader matches names with \\w and joins the region and the name with '-'."""
    return TIMIT_SEX.get(gender, "X") + re.sub(r"[^A-Za-z0-9]", "", speaker_id.removeprefix("spk-")).upper()


def timit_groups(accents: Iterable[str]) -> dict[str, int]:
    """Published accent (case-folded) -> dialect-region number, 1, 2, ... in alphabetical order; '' -> 0."""
    named = sorted({a.strip().lower() for a in accents if a.strip()})
    return {"": NOT_GROUPED, **{a: i for i, a in enumerate(named, 1)}}


def timit_speakers(published: Mapping[str, tuple[str, str]]) -> dict[str, TimitSpeaker]:
    """speaker_id -> (published gender, published accent) of the public speakers -> each one's TIMIT name and
    group. Two ids that give one name are refused: their files would mix."""
    groups = timit_groups(accent for _, accent in published.values())
    speakers = {
        sid: TimitSpeaker(timit_speaker_name(sid, gender), groups[accent.strip().lower()])
        for sid, (gender, accent) in published.items()
    }
    names = Counter(s.name for s in speakers.values())
    clashes = sorted(name for name, n in names.items() if n > 1)
    if clashes:
        raise ValueError(f"speaker ids that give the same TIMIT name: {', '.join(clashes)}")
    return speakers


def timit_utterance_name(prompt_type: str, prompt_id: int) -> str:
    return f"{SENTENCE_TYPES.get(prompt_type, 'SI')}{prompt_id}"


def timit_audio_path(
    split: str, speaker: TimitSpeaker, prompt_type: str, prompt_id: int, audio_format: str = "wav"
) -> str:
    utterance = timit_utterance_name(prompt_type, prompt_id)
    return f"{TIMIT_ROOT}/{TIMIT_DIRS[split]}/DR{speaker.group}/{speaker.name}/{utterance}{AUDIO_FORMATS[audio_format]}"


def _timit_place(entry: ReleaseEntry) -> tuple[str, int, str, str]:
    """(TRAIN or TEST, group, speaker name, utterance name) from the entry's audio path."""
    *_, folder, region, speaker, file = PurePosixPath(entry.audio).parts
    return folder, int(region.removeprefix("DR")), speaker, PurePosixPath(file).stem


def alignment_matches(entry: ReleaseEntry) -> bool:
    """Whether the alignment's phones, silences left out, are the entry's canonical phones in order."""
    spoken = [p.upper() for _, _, p in entry.alignment or () if p.lower() != SILENCE]
    return bool(entry.alignment) and spoken == [p for word in entry.phones for p in word]


def word_times(entry: ReleaseEntry) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` in samples: each word spans its phones in the alignment (silences between words are
    no word's). A word without phones has no time and is left out."""
    if not alignment_matches(entry):
        raise ValueError(f"{entry.utt_id}: no alignment of its canonical phones")
    spoken = [(s, t) for s, t, p in entry.alignment or () if p.lower() != SILENCE]
    times, i = [], 0
    for word, phones in zip(entry.words, entry.phones, strict=True):
        if phones:
            times.append((spoken[i][0], spoken[i + len(phones) - 1][1], word))
            i += len(phones)
    return times


def timit_phones(entry: ReleaseEntry) -> list[tuple[int, int, str]]:
    """TIMIT's phone labels: lower case, silence as ``h#`` at either end and ``pau`` between words."""
    last = len(entry.alignment or ()) - 1
    return [
        (s, t, ("h#" if i in (0, last) else "pau") if p.lower() == SILENCE else p.lower())
        for i, (s, t, p) in enumerate(entry.alignment or ())
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _label_files(entry: ReleaseEntry) -> dict[str, str]:
    """Suffix (without the dot) -> content of the entry's .TXT, .WRD and .PHN."""
    return {
        "txt": f"0 {entry.num_samples} {_one_line(entry.text)}\n",
        "wrd": "".join(f"{s} {t} {w}\n" for s, t, w in word_times(entry)),
        "phn": "".join(f"{s} {t} {p}\n" for s, t, p in timit_phones(entry)),
    }


def write_timit_labels(out: FileWriter, entries: Sequence[ReleaseEntry]) -> list[str]:
    """Beside each clip's audio, TIMIT's ``.TXT`` (``0 N prompt``), ``.WRD`` and ``.PHN`` (``start end label`` in
    samples), in the case of the audio's suffix. Every entry must be aligned."""
    written: list[str] = []
    for e in entries:
        stem, _, suffix = e.audio.rpartition(".")
        upper = suffix.isupper()
        for label, text in _label_files(e).items():
            written.append(f"{stem}.{label.upper() if upper else label}")
            out.put(written[-1], text)
    return written


def write_timit(out: FileWriter, entries: Sequence[ReleaseEntry]) -> dict[str, str]:
    """The public TIMIT tree's labels and documents, and NLTK's view of it: relative path -> split ('' for the
    documents every split shares). The audio is already in place (the builder wrote it while freezing). NLTK's
    files have the bytes of the tree's, but as files of their own: hard links would halve the files to create,
    and NLTK's reader refuses a file with more than one link (``nltk.pathsec``: one could point outside its root)."""
    written: dict[str, str] = {}

    def put(rel: str, text: str, split: str = "") -> None:
        out.put(rel, text)
        written[rel] = split

    speakers: dict[str, tuple[ReleaseEntry, tuple[str, int, str, str]]] = {}
    for e in sorted(entries, key=lambda e: e.audio):
        place = _timit_place(e)
        speakers.setdefault(e.speaker_id, (e, place))
        written[e.audio] = e.split
        nltk_stem = f"{NLTK_ROOT}/dr{place[1]}-{place[2].lower()}/{place[3].lower()}"
        stem = e.audio.rpartition(".")[0]
        for suffix, text in _label_files(e).items():
            put(f"{stem}.{suffix.upper()}", text, e.split)
            put(f"{nltk_stem}.{suffix}", text, e.split)
    info = _spkrinfo(speakers.values())
    dictionary = _timitdic(entries)
    put(f"{TIMIT_ROOT}/DOC/SPKRINFO.TXT", info)
    put(f"{TIMIT_ROOT}/DOC/TIMITDIC.TXT", dictionary)
    put(f"{NLTK_ROOT}/spkrinfo.txt", info)
    put(f"{NLTK_ROOT}/timitdic.txt", dictionary)
    put(f"{TIMIT_ROOT}/DOC/DIALECTS.TXT", _dialects(e for e, _ in speakers.values()))
    for split in ("dev", "test"):
        names = sorted(place[2].lower() for e, place in speakers.values() if e.split == split)
        put(f"{TIMIT_ROOT}/DOC/{split}_spk.list", "".join(f"{n}\n" for n in names))
    return written


def _field(value: str, empty: str = "??") -> str:
    return re.sub(r"\s+", "_", value.strip()) or empty


UNKNOWN_COLUMNS = "??/??/??  ??/??/??   ??   ???  ??"  # RecDate BirthDate Ht Race Edu


def _spkrinfo(speakers: Iterable[tuple[ReleaseEntry, tuple[str, int, str, str]]]) -> str:
    """TIMIT's DOC/SPKRINFO.TXT: ID (the name less its sex letter), Sex, DR, Use (TRN/TST), then RecDate,
    BirthDate, Ht, Race and Edu, which the platform does not ask (??), and Comments with the release's own
    speaker id, split, age band and first language."""
    lines = [
        "; OpenPhone speaker table in the shape of TIMIT's SPKRINFO.TXT (LDC93S1).\n",
        "; RecDate, BirthDate, Ht, Race and Edu are not collected: ??. DR: see DIALECTS.TXT.\n",
        ";\n",
        ";  ID      Sex DR Use  RecDate   BirthDate  Ht   Race Edu  Comments\n",
    ]
    for e, (folder, group, name, _) in sorted(speakers, key=lambda item: item[1][2]):
        comments = (
            f"speaker_id={e.speaker_id} split={e.split} age_band={_field(e.age_band)} "
            f"first_language={_field(e.first_language)}"
        )
        lines.append(f"{name[1:]:<9} {name[0]}   {group:<2} {TIMIT_USE[folder]}  {UNKNOWN_COLUMNS}   {comments}\n")
    return "".join(lines)


def _timitdic(entries: Iterable[ReleaseEntry]) -> str:
    """TIMIT's dictionary shape (``word /ph ph/``): the canonical pronunciations the release used."""
    lexicon: dict[str, str] = {}
    for e in entries:
        for word, phones in zip(e.words, e.phones, strict=True):
            lexicon.setdefault(word, " ".join(p.lower() for p in phones))
    header = "; OpenPhone pronunciations (CMUdict ARPAbet without stress), in TIMITDIC.TXT's shape.\n;\n"
    return header + "".join(f"{w} /{p}/\n" for w, p in sorted(lexicon.items()))


def _dialects(entries: Iterable[ReleaseEntry]) -> str:
    groups = timit_groups(e.accent for e in entries)
    lines = ["; Dialect regions (the DR<n> folders): the speakers' published accents.\n"]
    lines += [f"{n} {accent or 'not given or withheld'}\n" for accent, n in sorted(groups.items(), key=lambda x: x[1])]
    return "".join(lines)


# --- Kaldi ---------------------------------------------------------------------------------------------------------
def write_kaldi(out: FileWriter, split: str, entries: Sequence[ReleaseEntry]) -> list[str]:
    """A Kaldi data directory: ``wav.scp`` (paths relative to the release root: run from there, or copy the
    directory with absolute paths with ``python -m openphone.kaldi_paths``), ``text`` (words),
    ``text.phones`` (the canonical phones: copy it over ``text`` for a phone recogniser, as TIMIT recipes score),
    ``utt2spk``, ``spk2utt``, ``utt2dur``, ``reco2dur`` (each utterance is its own recording) and
    ``spk2gender`` when every speaker's gender is published as f or m.

    Utterance ids start with the speaker id (fixed length), so sorting by utterance sorts by speaker too, as
    ``utils/validate_data_dir.sh`` requires."""
    folder = f"kaldi/{split}"
    entries = sorted(entries, key=lambda e: e.utt_id)
    spk2utt: dict[str, list[str]] = defaultdict(list)
    genders: dict[str, str] = {}
    for e in entries:
        spk2utt[e.speaker_id].append(e.utt_id)
        genders[e.speaker_id] = KALDI_GENDERS.get(e.gender, "")
    files = {
        "wav.scp": "".join(f"{e.utt_id} {kaldi_wav(e.audio)}\n" for e in entries),
        "text": "".join(f"{e.utt_id} {e.transcript}\n" for e in entries),
        "text.phones": "".join(f"{e.utt_id} {e.phone_string}\n" for e in entries),
        "utt2spk": "".join(f"{e.utt_id} {e.speaker_id}\n" for e in entries),
        "utt2dur": "".join(f"{e.utt_id} {e.duration_s:.4f}\n" for e in entries),
        "reco2dur": "".join(f"{e.utt_id} {e.duration_s:.4f}\n" for e in entries),
        "spk2utt": "".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())),
    }
    if genders and all(genders.values()):
        files["spk2gender"] = "".join(f"{s} {g}\n" for s, g in sorted(genders.items()))
    for name, text in files.items():
        out.put(f"{folder}/{name}", text)
    return [f"{folder}/{name}" for name in files]


def kaldi_wav(audio: str) -> str:
    """A ``wav.scp`` entry: Kaldi reads RIFF WAV itself; FLAC comes through a ``flac`` pipe."""
    return f"flac -c -d -s {audio} |" if audio.lower().endswith(".flac") else audio


def write_kaldi_lang(out: FileWriter, phones: Sequence[str], silence: str, lexicon: Mapping[str, str]) -> list[str]:
    """The phone set as Kaldi takes it: ``kaldi/dict/`` for ``utils/prepare_lang.sh`` (``lexicon.txt`` with
    ``<unk>`` as silence, ``nonsilence_phones.txt``, ``silence_phones.txt``, ``optional_silence.txt``, an empty
    ``extra_questions.txt``) and ``kaldi/lang/phones.txt``, the phone symbol table (``<eps>`` 0, then silence and
    the phones), for phone-level scoring without building a lang directory."""
    table = ["<eps>", silence, *phones]
    entries = [("<unk>", silence), *sorted(lexicon.items())]
    files = {
        "kaldi/dict/lexicon.txt": "".join(f"{w} {p}\n" for w, p in entries),
        "kaldi/dict/nonsilence_phones.txt": "".join(f"{p}\n" for p in phones),
        "kaldi/dict/silence_phones.txt": f"{silence}\n",
        "kaldi/dict/optional_silence.txt": f"{silence}\n",
        "kaldi/dict/extra_questions.txt": "",
        "kaldi/lang/phones.txt": "".join(f"{p} {i}\n" for i, p in enumerate(table)),
    }
    for rel, text in files.items():
        out.put(rel, text)
    return list(files)


# --- Lhotse --------------------------------------------------------------------------------------------------------
def lhotse_paths(split: str) -> tuple[str, str]:
    return (f"lhotse/openphone_recordings_{split}.jsonl.gz", f"lhotse/openphone_supervisions_{split}.jsonl.gz")


def write_lhotse(out: FileWriter, split: str, entries: Sequence[ReleaseEntry]) -> list[str]:
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
            # Lhotse's supervision has no age or first-language field: they go in custom, as its recipes do.
            "custom": {
                "phones": e.phone_string,
                "prompt": e.text,
                "age_band": e.age_band,
                "first_language": e.first_language,
                "source": e.source,
            },
        }
        if e.gender:
            supervision["gender"] = e.gender
        supervisions.append(supervision)
    out.put(recordings_name, _gz_jsonl(recordings_name, recordings))
    out.put(supervisions_name, _gz_jsonl(supervisions_name, supervisions))
    return [recordings_name, supervisions_name]


def _gz_jsonl(rel: str, rows: list[dict]) -> bytes:
    """The rows as gzipped JSON lines, compressed in memory. mtime=0: the same rows give the same bytes, so a
    rebuilt release has the same checksums; the header names the file, as gzip writing to it does."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=PurePosixPath(rel).name, fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode())
    return buffer.getvalue()


# --- Hugging Face Parquet ------------------------------------------------------------------------------------------
# The dev split is `validation` in every way the data loads (shard names, card configs), as on the Hub: `datasets`
# renames `dev-*` shards to validation when it infers splits but keeps a card's split name as written.
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
# (column, type): the Parquet schema, the features in its metadata and the card's dataset_info, from one list.
HF_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("audio", "audio"),
    ("speaker_id", "string"),
    ("text", "string"),
    ("prompt", "string"),
    ("phones", "string"),
    ("gender", "string"),
    ("age_group", "string"),
    ("age_band", "string"),
    ("accent", "string"),
    ("first_language", "string"),
    ("prompt_type", "string"),
    ("votes_counted", "int32"),
    ("votes_valid", "int32"),
    ("score", "float32"),
    ("source", "string"),
    ("licence", "string"),
    ("duration_s", "float32"),
)
HF_FEATURES = {
    name: {"sampling_rate": SAMPLE_RATE, "_type": "Audio"} if kind == "audio" else {"dtype": kind, "_type": "Value"}
    for name, kind in HF_COLUMNS
}


def hf_schema():
    import pyarrow as pa

    types = {"string": pa.string(), "int32": pa.int32(), "float32": pa.float32()}
    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([(name, audio if kind == "audio" else types[kind]) for name, kind in HF_COLUMNS])
    # As `datasets` stores them on the Hub: the features in the schema metadata, so Audio is recognised.
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES}})})


def hf_shard_prefix(split: str) -> str:
    return f"hf/data/{HF_SPLITS[split]}-"


def _hf_columns(rows: Sequence[ReleaseEntry], flac: Mapping[str, Path]) -> dict[str, list]:
    audio = [{"bytes": flac[e.sha256].read_bytes(), "path": hf_audio_name(e)} for e in rows]
    return {"audio": audio, **_hf_values(rows)}


def hf_audio_name(entry: ReleaseEntry) -> str:
    """The ``path`` of a clip's audio in the Parquet shards: its utterance id (unique, unlike the TIMIT file name,
    which repeats in every speaker's folder) and what the bytes are."""
    return f"{entry.utt_id}.flac"


def _hf_values(rows: Sequence[ReleaseEntry]) -> dict[str, list]:
    """Every column but the audio."""
    return {
        "id": [e.utt_id for e in rows],
        "speaker_id": [e.speaker_id for e in rows],
        "text": [e.transcript for e in rows],
        "prompt": [e.text for e in rows],
        "phones": [e.phone_string for e in rows],
        "gender": [e.gender for e in rows],
        "age_group": [e.age_group for e in rows],
        "age_band": [e.age_band for e in rows],
        "accent": [e.accent for e in rows],
        "first_language": [e.first_language for e in rows],
        "prompt_type": [e.prompt_type for e in rows],
        "votes_counted": [e.votes_counted for e in rows],
        "votes_valid": [e.votes_valid_counted for e in rows],
        "score": [e.score for e in rows],
        "source": [e.source for e in rows],
        "licence": [e.licence for e in rows],
        "duration_s": [e.duration_s for e in rows],
    }


def write_parquet(root: Path, split: str, entries: Sequence[ReleaseEntry], *, flac: Mapping[str, Path]) -> list[Path]:
    """``hf/data/{train|validation|test}-0000i-of-0000n.parquet``, one row group per 100 clips, with each clip's
    stored FLAC embedded (``flac``: clip sha256 -> that file), whatever the TIMIT tree's audio format: the samples
    the tree has, losslessly, in 70 % of the WAV's bytes (the Hub's speech corpora embed FLAC too, and ``datasets``
    decodes it). The audio column is stored as it is: FLAC is compressed already, and zstd over it gained nothing
    for the CPU it took (zstd over WAV bytes took 1.9 s for the train split and still left them 40 % larger)."""
    import pyarrow.parquet as pq

    entries = sorted(entries, key=lambda e: e.utt_id)
    sizes = {e.sha256: flac[e.sha256].stat().st_size for e in entries}
    total = sum(sizes.values())
    shards = max(1, math.ceil(total / PARQUET_SHARD_BYTES))
    per_shard = math.ceil(len(entries) / shards) if entries else 0
    schema = hf_schema()
    compression = {column: "zstd" for column in schema.names} | {"audio.bytes": "none"}
    written: list[Path] = []
    for index in range(shards):
        path = root / f"{hf_shard_prefix(split)}{index:05d}-of-{shards:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        chunk = entries[index * per_shard : (index + 1) * per_shard]
        with pq.ParquetWriter(path, schema, compression=compression) as writer:
            for start in range(0, max(len(chunk), 1), PARQUET_ROW_GROUP):
                rows = chunk[start : start + PARQUET_ROW_GROUP]
                writer.write_table(_hf_table(rows, flac, sizes, schema))
        written.append(path)
    return written


def _hf_table(rows: Sequence[ReleaseEntry], flac: Mapping[str, Path], sizes: Mapping[str, int], schema):
    """A row group's table: the table ``from_pydict`` makes of :func:`_hf_columns`, with the audio column built
    without the GIL's help. Each clip's file is read straight into one Arrow buffer (reads release the GIL) and
    the buffer is the column's data, where converting 100 Python ``bytes`` copied 13 MB while holding the GIL: the
    shards are written on threads beside the text exports, whose every small write waited for it."""
    import numpy as np
    import pyarrow as pa

    ends = np.cumsum([sizes[e.sha256] for e in rows], dtype=np.int64)
    if len(rows) and ends[-1] >= 2**31:  # past a binary column's 32-bit offsets: Arrow's own conversion splits it
        return pa.Table.from_pydict(_hf_columns(rows, flac), schema=schema)
    offsets = np.concatenate([[0], ends]).astype(np.int32)
    data = pa.allocate_buffer(int(offsets[-1]))
    view = memoryview(data)
    for e, start, end in zip(rows, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        with open(flac[e.sha256], "rb", buffering=0) as handle:
            while start < end:
                read = handle.readinto(view[start:end])
                if not read:
                    raise OSError(f"{flac[e.sha256]} ended {end - start} bytes early: it changed while it was read")
                start += read
    audio_type = schema.field("audio").type
    blobs = pa.Array.from_buffers(audio_type.field("bytes").type, len(rows), [None, pa.py_buffer(offsets), data])
    names = pa.array([hf_audio_name(e) for e in rows], audio_type.field("path").type)
    audio = pa.StructArray.from_arrays([blobs, names], fields=list(audio_type))
    values = _hf_values(rows)
    return pa.Table.from_arrays(
        [audio if f.name == "audio" else pa.array(values[f.name], f.type) for f in schema], schema=schema
    )


def _size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def hf_card_header(
    *, version: str, splits: Mapping[str, tuple[int, int]], licences: Sequence[str], data_prefix: str
) -> str:
    """A dataset card's YAML front matter, as the Hub and ``datasets.load_dataset(folder)`` read it: licences (Hub
    ids, one per source), task categories, sizes, the features and, per split present (``splits``: release split
    -> (clips, Parquet bytes)), its examples and its shards under ``data_prefix``. Only the splits given are
    named, so a split's own tar loads without the others."""
    present = [s for s in HF_SPLITS if s in splits]
    examples = sum(splits[s][0] for s in present)
    size = sum(splits[s][1] for s in present)
    lines = ["---"]
    licences = sorted(set(licences))
    lines += [f"license: {licences[0]}"] if len(licences) == 1 else ["license:", *(f"- {lic}" for lic in licences)]
    lines += [
        "language:",
        "- en",
        f"pretty_name: OpenPhone {version}",
        "task_categories:",
        "- automatic-speech-recognition",
        "tags:",
        "- phone-recognition",
        "- read-speech",
        "- timit",
        "size_categories:",
        f"- {_size_category(examples)}",
        "dataset_info:",
        "  features:",
    ]
    for name, kind in HF_COLUMNS:
        if kind == "audio":
            lines += [f"  - name: {name}", "    dtype:", "      audio:", f"        sampling_rate: {SAMPLE_RATE}"]
        else:
            lines += [f"  - name: {name}", f"    dtype: {kind}"]
    lines += ["  splits:"]
    for s in present:
        lines += [f"  - name: {HF_SPLITS[s]}", f"    num_bytes: {splits[s][1]}", f"    num_examples: {splits[s][0]}"]
    lines += [f"  download_size: {size}", f"  dataset_size: {size}", "configs:", "- config_name: default"]
    lines += ["  data_files:"]
    for s in present:
        lines += [f"  - split: {HF_SPLITS[s]}", f"    path: {data_prefix}{HF_SPLITS[s]}-*.parquet"]
    return "\n".join([*lines, "---", ""]) + "\n"


def write_hf_card(out: FileWriter, header: str, body: str) -> str:
    """``hf/README.md``: the card (``header`` with shard paths relative to ``hf/``) over ``body``."""
    out.put("hf/README.md", header + body)
    return "hf/README.md"
