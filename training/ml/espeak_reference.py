"""Speech whose phone timings are known: espeak-ng readings with the sample at which it starts every phoneme.

libespeak-ng reports a phoneme event with the exact output sample at which it starts each phoneme
(``espeakINITIALIZE_PHONEME_EVENTS``, through ctypes); a stop's event marks its burst, so the digital silence of its
closure just before is given to the stop, as TIMIT's stop closures fold into the stop. espeak's phonemes are mapped
one to one onto the project's ARPAbet set, so an aligner given that phone sequence (grouped into espeak's words,
with optional silences between them) has a counterpart for every reference boundary. The audio is padded with
0.1-0.4 s of silence at each end and faint noise, as a microphone would record it.

``benchmarks/alignment.py`` measures the aligners on it; a release build measures the HMM that aligned it on a
small fixed set (``release_align.espeak_accuracy``). Plain numpy, soxr and ctypes, no Django.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field

import numpy as np
import soxr

RATE = 16000
SHIFT = 160  # the features' 10 ms shift: a phone of 3 frames or fewer is "squashed" to a 3-state HMM's minimum


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
    voice: str = ""  # the espeak-ng voice that read it


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
    phones: list[tuple[str, float, float]] = []
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
        phone, begins, ends = phones[i]
        phones[i] = (phone, begins, min(ends, phones[i + 1][1]))
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
                voice=voice,
                wave=wave,
                words=words,
                phones=[(p, s + lead, e + lead) for p, s, e in phones],
            )
        )
    return out


# --- scoring ------------------------------------------------------------------------------------------------


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
