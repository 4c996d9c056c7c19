"""Boundary accuracy of the forced aligners on speech whose phone timings are known, peers in the same run.

Usage::

    nice -n 19 .venv/bin/python benchmarks/alignment.py [--utterances 300] [--mlp-rounds 4] [--threads 2]

Reference timings: espeak-ng reading varied sentences (the demo prompts and the speechocean762 texts) with several
voices, pitches and speeds. libespeak-ng reports a phoneme event with the exact output sample at which it starts
each phoneme (``espeakINITIALIZE_PHONEME_EVENTS``); a stop's event marks its burst, so the digital silence of its
closure just before is given to the stop, as TIMIT's stop closures fold into the stop. espeak's phonemes are
mapped one to one onto the project's ARPAbet set, and every aligner is given that phone sequence (grouped into
espeak's words, with optional silences between them), so its boundaries can be compared one for one. The audio is
padded with 0.1-0.4 s of silence at each end and faint noise, as a microphone would record it.

Rows, all on the same utterances, each aligner trained on them from scratch as it would be on a release:

- **uniform**: sil + phones + sil spread evenly over the frames (the flat start);
- **mlp**: ``training/ml/align.py``'s flat-start frame-classifier realignment (``align.method = "mlp"``);
- **hmm**: the monophone HMM of ``training/ml/hmm_align.py`` (Baum-Welch, then Viterbi EM to 8 Gaussians), no MLP
  round;
- **hmm+mlp**: the HMM alignment followed by the MLP realignment rounds (``align.method = "hmm"``).

Columns: the share of phone boundaries within 20 ms (and 10, 40 ms) of the reference, the mean absolute boundary
error, and the share of phones squashed to the 3-frame (30 ms) minimum of a 3-state HMM; the reference's own share
of phones shorter than 30 ms is printed beside it. A boundary is the onset of every phone, plus the offset of a
phone that the reference follows by silence.

A second reference set, hand-labelled read English, is used when a package on the machine ships one (none that
pip offers was found: see docs/training.md); it is skipped otherwise.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from contributors.demo_prompts import COVERAGE_PROMPTS, SHARED_PROMPTS  # noqa: E402  (needs ROOT on sys.path)

MANIFEST = ROOT.parent / "shared" / "data" / "speechocean762-train" / "manifest.tsv"
RATE = 16000
SHIFT, LENGTH = 160, 400  # the features' 10 ms shift and 25 ms window

# espeak-ng's English phoneme mnemonics (en-us) -> the project's ARPAbet, one to one so every reference boundary
# has a counterpart. r-coloured and syllabic phonemes map to their vowel or consonant ('@L' -> L); pauses -> sil.
ESPEAK_TO_ARPABET = {
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "S": "SH", "Z": "ZH", "h": "HH", "m": "M", "n": "N", "N": "NG", "l": "L", "r": "R",
    "w": "W", "j": "Y", "tS": "CH", "dZ": "JH", "t#": "T", "d#": "D", "?": "T", "n-": "N", "m-": "M", "l-": "L",
    "@L": "L", "r-": "R", "x": "K", "t2": "T", "hw": "W", "w#": "W", "z#": "Z", "s#": "S",
    "@": "AH", "@2": "AH", "@5": "AH", "a#": "AH", "V": "AH", "3": "ER", "3:": "ER", "@r": "ER", "a": "AE",
    "aa": "AE", "A:": "AA", "A@": "AA", "A": "AA", "aI": "AY", "aI@": "AY", "aI3": "AY", "aU": "AW", "aU@": "AW",
    "E": "EH", "e@": "EH", "eI": "EY", "i": "IY", "i:": "IY", "I": "IH", "I2": "IH", "I#": "IH", "i@": "IY",
    "i@3": "IY", "I@": "IH", "0": "AA", "O:": "AO", "O": "AO", "O@": "AO", "o@": "AO", "OI": "OY", "oU": "OW",
    "U": "UH", "u:": "UW", "U@": "UH", "u": "UW", "e": "EH", "o": "OW", "O2": "AO", "@-": "AH",
}  # fmt: skip
LINKING = {";"}  # espeak's glide between two vowels across words: no ARPAbet phone, its time stays with the vowel
STOPS = {"P", "B", "T", "D", "K", "G", "CH", "JH"}
VOICES = ("en-us", "en-us+m3", "en-us+f2", "en-us+m1", "en-us+f4", "en-us+m7")


# --- espeak-ng through libespeak-ng's phoneme events ----------------------------------------------------------


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
EVENT_END, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
AUDIO_OUTPUT_SYNCHRONOUS, PHONEME_EVENTS, POS_CHARACTER = 2, 1, 1
RATE_PARAMETER, PITCH_PARAMETER = 1, 3


class Espeak:
    """libespeak-ng in synchronous mode: the waveform and (sample, phoneme) events of one reading."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, PHONEME_EVENTS)
        if self.rate <= 0:
            raise OSError("libespeak-ng did not initialise")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int, str]] = []
        self._callback = _CALLBACK(self._receive)  # kept referenced: libespeak-ng calls it later
        self.lib.espeak_SetSynthCallback(self._callback)

    def _receive(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != EVENT_END:
            event = events[i]
            if event.type == EVENT_PHONEME:
                self._events.append(("phoneme", event.sample, event.id.string.decode("ascii", "replace")))
            elif event.type == EVENT_WORD:
                self._events.append(("word", event.sample, ""))
            i += 1
        return 0

    def speak(self, text: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, list[tuple[str, int, str]]]:
        """int16 samples at self.rate, and ('word' | 'phoneme', sample, mnemonic) events in order."""
        self._chunks, self._events = [], []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(RATE_PARAMETER, speed, 0)
        self.lib.espeak_SetParameter(PITCH_PARAMETER, pitch, 0)
        data = text.encode() + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        return wave, list(self._events)


def espeak_available() -> bool:
    try:
        Espeak()
    except OSError:
        return False
    return True


@dataclass
class Reference:
    """An utterance with known phone timings: 16 kHz audio, words of phones, and (phone, start, end) seconds."""

    utt_id: str
    wave: np.ndarray
    words: list[list[str]]
    phones: list[tuple[str, float, float]] = field(default_factory=list)  # non-silence phones, in order
    source: str = "espeak-ng"


def _silent_runs(wave: np.ndarray, min_samples: int) -> list[tuple[int, int]]:
    quiet = np.abs(wave.astype(np.int32)) <= 1
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_samples]


def reference_from_events(
    wave: np.ndarray, events: list[tuple[str, int, str]], rate: int
) -> tuple[list[list[str]], list[tuple[str, float, float]]]:
    """espeak-ng events -> words of ARPAbet phones and (phone, start s, end s) of each, at the output's rate.

    A phone runs from its event to the next phoneme event, less any digital silence (>= 5 ms) before that
    event; a stop or affricate starts at the silence (its closure) just before its burst."""
    runs = _silent_runs(wave, int(0.005 * rate))
    run_ending = {b: a for a, b in runs}
    starts_of = sorted(a for a, _ in runs)
    marks: list[tuple[str, int]] = []  # (phone or 'sil', sample)
    words: list[list[str]] = []
    new_word = True
    for kind, sample, name in events:
        if kind == "word":
            new_word = True
            continue
        if name.startswith("_") or name in {"||", "|"}:
            marks.append(("sil", sample))
            continue
        if name in LINKING:
            continue
        phone = ESPEAK_TO_ARPABET.get(name)
        if phone is None:
            raise KeyError(f"no ARPAbet mapping for espeak-ng phoneme {name!r}")
        if new_word or not words:
            words.append([])
            new_word = False
        words[-1].append(phone)
        marks.append((phone, sample))
    marks.append(("sil", len(wave)))
    phones = []
    for i, (phone, sample) in enumerate(marks[:-1]):
        if phone == "sil":
            continue
        start, end = sample, marks[i + 1][1]
        if phone in STOPS:
            closure = max((a for b, a in run_ending.items() if abs(b - start) <= int(0.003 * rate)), default=None)
            if closure is not None:
                start = closure
        # the phone ends where silence begins before the next event (a pause, or the next stop's closure)
        inside = [a for a in starts_of if start < a < end]
        if inside:
            end = inside[0]
        phones.append((phone, start / rate, end / rate))
    # A stop's closure moved its start back: the phone before it ends there at the latest.
    for i in range(len(phones) - 1):
        phone, start, end = phones[i]
        phones[i] = (phone, start, min(end, phones[i + 1][1]))
    return words, phones


def espeak_corpus(texts: list[str], n: int, seed: int = 0) -> list[Reference]:
    """n readings of the texts (cycled) with voices, speeds and pitches drawn from a seeded generator."""
    engine = Espeak()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        text = texts[i % len(texts)]
        voice = VOICES[int(rng.integers(len(VOICES)))]
        speed, pitch = int(rng.integers(130, 211)), int(rng.integers(25, 76))
        raw, events = engine.speak(text, voice, speed, pitch)
        words, phones = reference_from_events(raw, events, engine.rate)
        if not phones:
            continue
        audio = soxr.resample(raw.astype(np.float32) / 32768.0, engine.rate, RATE).astype(np.float32)
        lead, tail = rng.uniform(0.1, 0.4, size=2)
        pad = [np.zeros(int(lead * RATE), np.float32), audio, np.zeros(int(tail * RATE), np.float32)]
        wave = np.concatenate(pad)
        wave += rng.normal(0, 10 ** (-55 / 20), len(wave)).astype(np.float32)  # a quiet room's noise floor
        out.append(
            Reference(
                utt_id=f"espeak{i:04d}",
                wave=wave,
                words=words,
                phones=[(p, s + lead, e + lead) for p, s, e in phones],
            )
        )
    return out


def benchmark_texts() -> list[str]:
    """The demo's prompts and, when the shared corpus is here, its sentences (every one different)."""
    texts = list(DEMO_SENTENCES)
    if MANIFEST.exists():
        import csv

        with MANIFEST.open(encoding="utf-8", newline="") as handle:
            texts += [row["text"].lower() for row in csv.DictReader(handle, delimiter="\t")]
    return texts


# The sentences of the demo's shared and coverage prompts, which cover every phone.
DEMO_SENTENCES = SHARED_PROMPTS + COVERAGE_PROMPTS[:16]


# --- measuring ------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    errors: list[float] = field(default_factory=list)  # seconds, one per boundary
    phones: int = 0
    squashed: int = 0  # phones given the 3-frame minimum
    mismatched: int = 0  # utterances whose aligned phone sequence is not the reference's

    def add(self, ref: Reference, hyp: list[tuple[int, int, str]]) -> None:
        """hyp: (start sample, end sample, phone) of every segment the aligner produced, silences included."""
        spoken = [(s / RATE, e / RATE, p) for s, e, p in hyp if p != "sil"]
        if [p for *_, p in spoken] != [p for p, *_ in ref.phones]:
            self.mismatched += 1
            return
        for i, ((_, r_start, r_end), (h_start, h_end, _)) in enumerate(zip(ref.phones, spoken, strict=True)):
            self.errors.append(abs(h_start - r_start))
            pause_after = i == len(ref.phones) - 1 or ref.phones[i + 1][1] - r_end > 1e-4
            if pause_after:
                self.errors.append(abs(h_end - r_end))
            self.phones += 1
            self.squashed += round((h_end - h_start) * RATE / SHIFT) <= 3

    def within(self, seconds: float) -> float:
        return float(np.mean(np.asarray(self.errors) <= seconds + 1e-9)) if self.errors else float("nan")


def store_for(references: list[Reference], config):
    from training.ml.data import Utterance, build_store

    utterances = [
        Utterance(utt_id=r.utt_id, speaker=r.utt_id, audio="", text="", split="train", words=r.words)
        for r in references
    ]
    return build_store(utterances, [r.wave for r in references], config)


def score_labels(references: list[Reference], store, labels) -> Scores:
    from training.ml.align import phone_times

    scores = Scores()
    for u, ref in enumerate(references):
        lab = labels[int(store.offsets[u]) : int(store.offsets[u + 1])].numpy()
        scores.add(ref, phone_times(lab, SHIFT, LENGTH))
    return scores


def reference_short_share(references: list[Reference]) -> float:
    durations = np.array([e - s for r in references for _, s, e in r.phones])
    return float(np.mean(durations < 0.030 - 1e-9))


def run_aligners(references: list[Reference], config_file: Path, mlp_rounds: int) -> list[tuple[str, Scores, float]]:
    import dataclasses

    import torch

    from training.ml.align import align_corpus, flat_start_labels
    from training.ml.config import load_config

    config = load_config([config_file])
    config.train.progress = False
    config.train.device = "cpu"
    config.align.rounds = mlp_rounds
    store = store_for(references, config)
    rows: list[tuple[str, Scores, float]] = []
    started = time.perf_counter()
    rows.append(("uniform (flat start)", score_labels(references, store, flat_start_labels(store)), 0.0))
    runs = [
        ("mlp: flat start + MLP realignment (align.method=mlp)", {"method": "mlp"}),
        ("hmm: monophone HMM, Baum-Welch then Viterbi EM, 1->8 Gaussians", {"method": "hmm", "rounds": 0}),
        ("hmm+mlp: HMM, then the MLP realignment rounds", {"method": "hmm"}),
    ]
    for name, change in runs:
        cfg = dataclasses.replace(config, align=dataclasses.replace(config.align, **change))
        torch.manual_seed(cfg.train.seed)
        started = time.perf_counter()
        labels, _ = align_corpus(store, cfg, progress=False)
        rows.append((name, score_labels(references, store, labels), time.perf_counter() - started))
    return rows


def table(rows: list[tuple[str, Scores, float]], title: str) -> str:
    lines = [
        f"{title}",
        "",
        "| aligner | within 20 ms | within 10 ms | within 40 ms | mean abs error | squashed to 30 ms | wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s, seconds in rows:
        mean = 1000 * float(np.mean(s.errors)) if s.errors else float("nan")
        lines.append(
            f"| {name} | {100 * s.within(0.020):.1f} % | {100 * s.within(0.010):.1f} % | {100 * s.within(0.040):.1f} % "
            f"| {mean:.1f} ms | {100 * s.squashed / max(1, s.phones):.1f} % | {seconds:.0f} |"
        )
    return "\n".join(lines)


def hand_labelled_references() -> list[Reference]:
    """Hand-labelled read English shipped by an installed package: none is known to pip today."""
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--mlp-rounds", type=int, default=4, help="the documented small_cpu recipe's rounds")
    parser.add_argument("--config", default=str(ROOT / "training/ml/configs/small_cpu.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if not espeak_available():
        print("libespeak-ng is not installed (apt-get install espeak-ng): nothing to measure.", file=sys.stderr)
        return 1
    texts = benchmark_texts()
    rng = np.random.default_rng(args.seed)
    texts = list(DEMO_SENTENCES) + [texts[i] for i in rng.permutation(len(texts))]
    started = time.perf_counter()
    references = espeak_corpus(texts, args.utterances, seed=args.seed)
    seconds = sum(len(r.wave) for r in references) / RATE
    n_boundaries = sum(len(r.phones) for r in references)
    print(
        f"espeak-ng corpus: {len(references)} utterances, {seconds / 60:.1f} min of audio, {n_boundaries} phones, "
        f"{100 * reference_short_share(references):.1f} % of reference phones shorter than 30 ms "
        f"(built in {time.perf_counter() - started:.0f} s)"
    )
    rows = run_aligners(references, Path(args.config), args.mlp_rounds)
    print(table(rows, f"espeak-ng, {len(references)} utterances, {len(VOICES)} voices"))
    for name, s, _ in rows:
        if s.mismatched:
            print(f"  {name}: {s.mismatched} utterances not scored (the aligner's phones differ)")
    hand = hand_labelled_references()
    if hand:
        rows = run_aligners(hand, Path(args.config), args.mlp_rounds)
        print(table(rows, "hand-labelled read English"))
    else:
        print("hand-labelled read English: no package on this machine ships any; skipped.")
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
