"""Upload audio: decode, check, normalise to 16 kHz mono 16-bit FLAC, and measure.

Plain NumPy/soundfile/soxr, no Django: the upload service, the import command and the benchmarks call
the same functions. Every refusal is an :class:`AudioRejected` with a stable code.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

TARGET_RATE = 16_000
# What an upload may be, by libsndfile's (container, encoding): WAV with integer or float PCM, and FLAC; nothing
# lossy, nothing undocumented. A phonetic corpus is only as good as its least faithful clip, and a lossy source
# (MP3, Ogg Vorbis/Opus, or mu-law, A-law, ADPCM and GSM inside a WAV) has lost detail that no re-encoding as FLAC
# restores and no user of a release could tell apart afterwards; MP3 also pads the start by an encoder delay that
# shifts every time alignment. So every stored clip is lossless from the microphone on, with no per-clip flag to
# check. The record page always sends 16-bit WAV; libsndfile would read AIFF, AU, CAF and more, which are refused
# as undocumented rather than supported by accident.
_PCM = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})
ACCEPTED_FORMATS: dict[str, frozenset[str]] = {
    "WAV": _PCM,
    "WAVEX": _PCM,  # WAVE_FORMAT_EXTENSIBLE: what multichannel and 24-bit recorders write
    "FLAC": frozenset({"PCM_S8", "PCM_16", "PCM_24"}),
}
ACCEPTED_DESCRIPTION = "WAV (8-, 16-, 24- or 32-bit integer or 32- or 64-bit float PCM) or FLAC"
_FULL_SCALE = 0.999  # a sample at or above this magnitude counts as clipped (int16: >= 32735)
_EPS = 1e-10


class AudioRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ClipLimits:
    min_duration_s: float = 1.0
    max_duration_s: float = 15.0
    min_sample_rate: int = 8000
    max_sample_rate: int = 48000
    max_channels: int = 8
    silence_max_rms_dbfs: float = -60.0
    clipping_max_ratio: float = 0.01
    # Below this share of 10 ms frames that rise above the noise floor (``estimate_speech``) a clip is refused
    # with ``audio_no_speech``. Measured (benchmarks/speech_ratio.py, docs/benchmarks.md): every real reading
    # of speechocean762-train (2,500; min 0.241, p5 0.490) and of espeak-ng (80, one-word prompts and 2 s of
    # room noise around them included; min 0.149) is above 0.1; the near-silent take (0.24 s of
    # speech in 3.5 s at -54 dBFS; max 0.072), room noise (max 0.026) and steady tones (0.000) are below.
    min_speech_ratio: float = 0.1


@dataclass(frozen=True)
class NormalisedAudio:
    """The stored form of a clip and what was measured on the way."""

    flac: bytes
    sha256: str
    samples: np.ndarray  # float32 mono at 16 kHz, as encoded
    duration_s: float
    original_format: str
    original_sample_rate: int
    original_channels: int
    original_bytes: int
    rms_dbfs: float
    peak_dbfs: float
    clipping_ratio: float


def _dbfs(value: float) -> float:
    return float(20.0 * np.log10(max(value, _EPS)))


_UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's frame count (SF_COUNT_MAX) for a file whose header gives none


def decode(data: bytes, limits: ClipLimits) -> tuple[np.ndarray, sf._SoundFileInfo]:
    """Decode at most max_duration + 1 s of audio; the header is checked before any samples are read,
    so a small file that claims hours of audio costs nothing."""
    if not data:
        raise AudioRejected("audio_empty", "The audio file is empty.")
    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # libsndfile raises several types for garbage; all mean the same here
        raise AudioRejected(
            "audio_undecodable", f"The file is not audio we can read: send {ACCEPTED_DESCRIPTION}."
        ) from exc
    if info.subtype not in ACCEPTED_FORMATS.get(info.format, ()):
        raise AudioRejected(
            "audio_format_unsupported",
            f"{info.format}/{info.subtype} ({info.subtype_info or info.format_info}) is not accepted: send "
            f"{ACCEPTED_DESCRIPTION}, recorded losslessly (lossy sources such as MP3 or Ogg lose detail for good).",
        )
    if not limits.min_sample_rate <= info.samplerate <= limits.max_sample_rate:
        raise AudioRejected(
            "audio_sample_rate_unsupported",
            f"Sample rate {info.samplerate} Hz is outside {limits.min_sample_rate}-{limits.max_sample_rate} Hz.",
        )
    if not 1 <= info.channels <= limits.max_channels:
        raise AudioRejected("audio_channels_unsupported", f"{info.channels} channels is not supported.")
    if info.frames == _UNKNOWN_LENGTH:
        # A FLAC streamed to a pipe (ffmpeg ... -f flac -) leaves STREAMINFO's sample count at 0, and libsndfile
        # then cannot read it to its end (its seek past the last block fails): say so, rather than "too long".
        raise AudioRejected(
            "audio_length_unknown",
            f"The {info.format} file does not say how long it is (written to a pipe, its header has no length); "
            "re-encode it as a file (flac, ffmpeg to a .flac path) or send WAV.",
        )
    max_frames = int((limits.max_duration_s + 1.0) * info.samplerate)
    if info.frames > max_frames:
        raise _too_long(info.frames / info.samplerate, limits)
    try:
        samples, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True, frames=max_frames)
    except Exception as exc:
        raise AudioRejected("audio_undecodable", "The audio data is damaged and cannot be decoded.") from exc
    if samples.shape[0] == 0:
        raise AudioRejected("audio_empty", "The file holds no audio samples.")
    # A float WAV can hold what no microphone gives: an infinite level cannot be stored, shown or exported as JSON.
    if not np.isfinite(samples).all():
        raise AudioRejected(
            "audio_not_finite", "The file holds samples that are not numbers (NaN or infinity): it is damaged."
        )
    return samples, info


def _too_long(duration: float, limits: ClipLimits) -> AudioRejected:
    return AudioRejected(
        "audio_too_long", f"The clip is {duration:.1f} s long; the limit is {limits.max_duration_s:g} s."
    )


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Average the channels and resample with soxr's high-quality filter."""
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if sample_rate != TARGET_RATE:
        mono = soxr.resample(mono, sample_rate, TARGET_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def quantise_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


def encode_flac(samples_int16: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples_int16, TARGET_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def normalise(data: bytes, limits: ClipLimits) -> NormalisedAudio:
    """Decode, check every limit, and produce the stored FLAC; raises AudioRejected."""
    samples, info = decode(data, limits)
    duration = samples.shape[0] / info.samplerate
    if duration < limits.min_duration_s:
        raise AudioRejected(
            "audio_too_short", f"The clip is {duration:.2f} s long; it must be at least {limits.min_duration_s:g} s."
        )
    if duration > limits.max_duration_s:
        raise _too_long(duration, limits)
    # Clipping is measured on the original samples: resampling smooths flat-topped peaks away.
    clipping_ratio = float(np.mean(np.abs(samples) >= _FULL_SCALE))
    mono = to_mono_16k(samples, info.samplerate)
    rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
    peak = float(np.max(np.abs(mono)))
    if peak == 0.0 or _dbfs(rms) < limits.silence_max_rms_dbfs:
        raise AudioRejected(
            "audio_silent",
            f"The clip is silent (level {_dbfs(rms):.0f} dBFS); check that the microphone is on.",
        )
    if clipping_ratio > limits.clipping_max_ratio:
        raise AudioRejected(
            "audio_clipped",
            f"{clipping_ratio:.1%} of the samples are clipped; record again a little further from the microphone.",
        )
    pcm = quantise_int16(mono)
    stored = pcm.astype(np.float32) / 32767.0
    # Measured on the samples as stored, so that the analysis task, which reads the FLAC back, finds the same.
    speech_ratio = estimate_speech(stored).speech_ratio
    if speech_ratio < limits.min_speech_ratio:
        raise AudioRejected(
            "audio_no_speech",
            f"Only {speech_ratio:.0%} of the clip sounds like speech (at least {limits.min_speech_ratio:.0%} must): "
            "read the sentence aloud, close to the microphone, and press Stop soon after.",
        )
    flac = encode_flac(pcm)
    return NormalisedAudio(
        flac=flac,
        sha256=hashlib.sha256(flac).hexdigest(),
        samples=stored,
        duration_s=pcm.shape[0] / TARGET_RATE,
        original_format=f"{info.format}/{info.subtype}",
        original_sample_rate=int(info.samplerate),
        original_channels=int(info.channels),
        original_bytes=len(data),
        rms_dbfs=round(_dbfs(rms), 2),
        peak_dbfs=round(_dbfs(peak), 2),
        clipping_ratio=clipping_ratio,
    )


@dataclass(frozen=True)
class SpeechEstimate:
    speech_ratio: float
    snr_db: float


def estimate_speech(samples: np.ndarray, sample_rate: int = TARGET_RATE) -> SpeechEstimate:
    """Energy-based voice activity: frames 25 ms / 10 ms; the noise floor is the 10th percentile of
    frame energy, speech is what rises 10 dB above it (and above -55 dBFS); SNR is the mean speech
    energy over the floor, capped at 100 dB for digitally silent gaps."""
    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    if samples.shape[0] < win:
        return SpeechEstimate(speech_ratio=0.0, snr_db=0.0)
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), win)[::hop]
    energy_db = 10.0 * np.log10(np.mean(frames**2, axis=1) + _EPS)
    floor = float(np.percentile(energy_db, 10))
    speech = energy_db > max(floor + 10.0, -55.0)
    ratio = float(np.mean(speech))
    if not speech.any():
        return SpeechEstimate(speech_ratio=0.0, snr_db=0.0)
    speech_db = 10.0 * np.log10(np.mean(10.0 ** (energy_db[speech] / 10.0)))
    return SpeechEstimate(speech_ratio=round(ratio, 4), snr_db=round(float(min(speech_db - floor, 100.0)), 2))


def read_flac(data: bytes) -> np.ndarray:
    samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    return samples
