"""Benchmark: the upload path (``POST /api/v1/clips/``) against its floor, audio normalisation alone.

Usage::

    .venv/bin/python benchmarks/upload.py [--clips N] [--clients 1,4,8] [--database-url URL] [--workers W]

What is measured, each row on its own ``--clips`` distinct recordings (default 400):

1. **floor**: ``contributors.audio.normalise`` in-process, pinned to one core: decode (soundfile), downmix,
   resample to 16 kHz (soxr HQ), FLAC encode, sha256. Every upload must pay this, and no web stack can
   make it cheaper, so it is the peer the other rows are compared with: "vs floor" is a row's clips/s over
   the floor's clips/s.
2. **service**: ``clip_submit`` in-process on the same inputs as the floor, also pinned to one core (the
   PostgreSQL server runs beside it): the floor plus the consent, prompt and duplicate checks, the file
   write through Django storage, the row insert and the analysis enqueue (an in-memory Celery broker, so
   the broker itself costs nothing). Service / floor is the overhead of the platform's own code.
3. **http**: the real API under gunicorn (``--workers`` sync workers, default 2, one per core of the
   reference machine), for each ``--clients`` level that many threads, each with its own contributor,
   token and ``requests.Session``, posting multipart uploads as fast as answers come. Throughput counts
   the whole level; latency is per request, queueing included. Every answer must be 201. With W workers
   the ideal is about W x the floor, less what the clients themselves cost on the same machine.

Inputs are real recordings from ``../shared/data/speechocean762-train`` (16 kHz mono FLAC) when that
folder exists, else seeded synthetic speech-like audio. In every row 3 of each 5 clips are uploaded as
recorded (16 kHz mono FLAC) and 2 are converted to stereo 16-bit WAV, one at 44.1 kHz and one at 48 kHz,
so that downmixing and resampling are exercised. Every clip is a distinct recording (the platform
deduplicates by sha256 and keeps one clip per contributor per prompt); past the corpus size a
recording comes back with a small gain change, which makes it distinct again.

The script creates a fresh PostgreSQL database (``--database-url``; the server's ``postgres`` database is
used to create and drop it), a temporary DATA_DIR, and tears both down, and stops gunicorn, even on error.
"""

from __future__ import annotations

import argparse
import csv
import platform
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import requests
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402  (needs ROOT on sys.path)
from contributors.audio import AudioRejected, ClipLimits, normalise  # noqa: E402  (needs ROOT on sys.path)

CORPUS = ROOT.parent / "shared" / "data" / "speechocean762-train"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_upload"
SEED = 20240601
SOURCE_RATE = 16_000
# Position in a block of 5 -> how the clip is uploaded; the same mix in every row.
UPLOAD_KINDS = ("flac16k", "flac16k", "flac16k", "wav44k_stereo", "wav48k_stereo")
KIND_RATES = {"wav44k_stereo": 44_100, "wav48k_stereo": 48_000}
MIX_LINE = "3/5 16 kHz mono FLAC as recorded, 1/5 44.1 kHz stereo WAV, 1/5 48 kHz stereo WAV"
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Recording:
    """One source recording: a corpus file, or a seed for synthetic speech."""

    duration_s: float
    path: Path | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Upload:
    """One file as a client would send it."""

    data: bytes
    filename: str
    content_type: str
    duration_s: float


@dataclass
class Row:
    path: str
    clients: int
    clips: int
    elapsed_s: float
    audio_s: float
    latencies_ms: list[float]
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.clips / self.elapsed_s

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.latencies_ms, percentile)) if self.latencies_ms else float("nan")


# --- inputs ---------------------------------------------------------------------------------------


def corpus_recordings(limits: ClipLimits) -> list[Recording]:
    """The corpus files whose duration the upload limits accept; empty when the corpus is absent."""
    manifest = CORPUS / "manifest.tsv"
    if not manifest.exists():
        return []
    margin = 0.05  # the manifest rounds durations; stay clear of the limits
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        Recording(duration_s=float(row["duration_s"]), path=CORPUS / row["audio"])
        for row in rows
        if limits.min_duration_s + margin <= float(row["duration_s"]) <= limits.max_duration_s - margin
    ]


def synthetic_recordings(count: int) -> list[Recording]:
    rng = np.random.default_rng(SEED)
    return [Recording(duration_s=round(float(rng.uniform(2.0, 6.0)), 3), seed=SEED + i) for i in range(count)]


def synthetic_speech(recording: Recording) -> np.ndarray:
    """Voiced speech, roughly: harmonics of a wandering pitch with a falling spectrum, in syllable-rate
    bursts separated by pauses, over a faint noise floor. Enough for the codec and resampler to work on."""
    rng = np.random.default_rng(recording.seed)
    n = int(recording.duration_s * SOURCE_RATE)
    t = np.arange(n) / SOURCE_RATE
    f0 = rng.uniform(90, 220) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SOURCE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t + rng.uniform(0, np.pi)), 0, None) ** 2
    noise = rng.normal(0, 0.003, n)
    return (0.25 * voiced * syllables + noise).astype(np.float32)


def recording_samples(recording: Recording) -> np.ndarray:
    if recording.path is not None:
        samples, _ = sf.read(recording.path, dtype="float32")
        return samples
    return synthetic_speech(recording)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    # Converted here, not by libsndfile, whose float-to-int conversion wraps around instead of clipping.
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


def encode(samples: np.ndarray, rate: int, file_format: str) -> bytes:
    buffer = BytesIO()
    sf.write(buffer, to_pcm16(samples), rate, format=file_format, subtype="PCM_16")
    return buffer.getvalue()


def stereo_at(samples: np.ndarray, rate: int) -> np.ndarray:
    """The recording resampled to ``rate`` on two slightly different channels, so the downmix matters."""
    resampled = soxr.resample(samples, SOURCE_RATE, rate, quality="HQ")
    return np.stack([resampled, 0.8 * resampled], axis=1)


def make_upload(recording: Recording, kind: str, variant: int, name: str) -> Upload:
    """``variant`` > 0 scales the gain slightly: a recording used again is a different recording."""
    if kind == "flac16k" and variant == 0 and recording.path is not None:
        data = recording.path.read_bytes()  # exactly the file as recorded
    else:
        samples = recording_samples(recording) * (1.0 - 0.01 * variant)
        if kind == "flac16k":
            data = encode(samples, SOURCE_RATE, "FLAC")
        else:
            data = encode(stereo_at(samples, KIND_RATES[kind]), KIND_RATES[kind], "WAV")
    extension, content_type = ("flac", "audio/flac") if kind == "flac16k" else ("wav", "audio/wav")
    return Upload(data=data, filename=f"{name}.{extension}", content_type=content_type, duration_s=recording.duration_s)


def make_uploads(recordings: list[Recording], *, start: int, count: int) -> list[Upload]:
    """Uploads ``start`` .. ``start + count`` of the endless sequence of distinct recordings."""
    uploads = []
    for i in range(count):
        index = start + i
        variant, position = divmod(index, len(recordings))
        kind = UPLOAD_KINDS[i % len(UPLOAD_KINDS)]
        uploads.append(make_upload(recordings[position], kind, variant, name=f"clip-{index}"))
    return uploads


# --- database and Django --------------------------------------------------------------------------


def prompts_create(count: int) -> list[int]:
    """Fixtures, not measured: plain rows, because prompt_create's pronunciation lookup is beside the point."""
    from contributors.models import Prompt

    prompts = Prompt.objects.bulk_create(
        Prompt(text=f"Benchmark sentence {i}.", normalised_text=f"benchmark sentence {i}", source="benchmark")
        for i in range(count)
    )
    return [prompt.pk for prompt in prompts]


def contributors_create(count: int, label: str) -> list[tuple[object, str]]:
    """(contributor, API token) pairs who have consented; the password is never checked, so it is hashed
    with a cheap hasher to keep set-up short."""
    from django.test import override_settings
    from rest_framework.authtoken.models import Token

    from contributors.services.accounts import contributor_signup

    made = []
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for k in range(count):
            contributor = contributor_signup(
                username=f"bench-{label}-{k}", password=secrets.token_urlsafe(16), cc0_consent=True
            )
            made.append((contributor, Token.objects.create(user=contributor.user).key))
    return made


# --- measurements ---------------------------------------------------------------------------------


def measure_floor(uploads: list[Upload], limits: ClipLimits) -> Row:
    for upload in uploads[:3]:  # warm-up: first calls load codecs and filters
        normalise(upload.data, limits)
    latencies, failures = [], []
    start = time.perf_counter()
    for upload in uploads:
        began = time.perf_counter()
        try:
            normalise(upload.data, limits)
        except AudioRejected as exc:
            failures.append(f"{upload.filename}: {exc.code}")
        latencies.append((time.perf_counter() - began) * 1000)
    elapsed = time.perf_counter() - start
    return Row("floor (normalise)", 1, len(uploads), elapsed, audio_seconds(uploads), latencies, failures)


def measure_service(uploads: list[Upload], contributor: object, prompt_ids: list[int]) -> Row:
    from contributors.services.clips import clip_submit
    from core.errors import ServiceError

    latencies, failures = [], []
    start = time.perf_counter()
    for upload, prompt_id in zip(uploads, prompt_ids, strict=False):
        began = time.perf_counter()
        try:
            submission = clip_submit(contributor=contributor, prompt_id=prompt_id, data=upload.data)
            if not submission.created:
                failures.append(f"{upload.filename}: already stored")
        except ServiceError as exc:
            failures.append(f"{upload.filename}: {exc}")
        latencies.append((time.perf_counter() - began) * 1000)
    elapsed = time.perf_counter() - start
    return Row("service (clip_submit)", 1, len(uploads), elapsed, audio_seconds(uploads), latencies, failures)


def measure_http(base_url: str, uploads: list[Upload], tokens: list[str], prompt_ids: list[int]) -> Row:
    """len(tokens) clients at once; client k posts uploads k, k + clients, ... one after another."""
    clients = len(tokens)

    def client(k: int) -> tuple[list[float], list[str]]:
        latencies, failures = [], []
        with harness.token_session(tokens[k]) as session:
            for i in range(k, len(uploads), clients):
                upload = uploads[i]
                began = time.perf_counter()
                try:
                    response = session.post(
                        f"{base_url}/api/v1/clips/",
                        data={"prompt": str(prompt_ids[i])},
                        files={"audio": (upload.filename, upload.data, upload.content_type)},
                        timeout=REQUEST_TIMEOUT_S,
                    )
                    if response.status_code != 201:
                        failures.append(f"{upload.filename}: {response.status_code} {response.text[:200]}")
                except requests.RequestException as exc:
                    failures.append(f"{upload.filename}: {exc}")
                latencies.append((time.perf_counter() - began) * 1000)
        return latencies, failures

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    latencies = [ms for client_latencies, _ in results for ms in client_latencies]
    failures = [failure for _, client_failures in results for failure in client_failures]
    return Row("http (gunicorn)", clients, len(uploads), elapsed, audio_seconds(uploads), latencies, failures)


def audio_seconds(uploads: list[Upload]) -> float:
    return sum(upload.duration_s for upload in uploads)


# --- report ---------------------------------------------------------------------------------------


def print_report(rows: list[Row], *, postgres_version: str, source: str, workers: int, load_before: str) -> None:
    floor = rows[0].rate
    print()
    print(harness.machine_line(f"Python {platform.python_version()}", f"PostgreSQL {postgres_version}"))
    print(f"inputs: {source}; mix: {MIX_LINE}")
    print(f"floor and service pinned to one core; http: gunicorn, {workers} sync workers, clients on the same host")
    print(harness.load_before_line(load_before))
    print()
    print("| path | clients | clips | clips/s | p50 ms | p99 ms | vs floor | x real time | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row.path} | {row.clients} | {row.clips} | {row.rate:.1f} | {row.latency_ms(50):.1f} | "
            f"{row.latency_ms(99):.1f} | {row.rate / floor:.2f} | {row.audio_s / row.elapsed_s:.0f} | "
            f"{len(row.failures)} |"
        )
    total_audio = sum(row.audio_s for row in rows)
    total_time = sum(row.elapsed_s for row in rows)
    print()
    print(
        f"audio: {total_audio:.0f} s processed in {total_time:.1f} s of measured time "
        f"({total_audio / total_time:.0f}x real time over all rows; "
        f"{rows[0].audio_s / rows[0].clips:.2f} s mean clip)"
    )
    harness.print_failures(rows)


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=400, help="Clips per row (default 400).")
    parser.add_argument(
        "--clients", type=harness.client_levels, default="1,4,8", help="Concurrent HTTP clients, one level per row."
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Created and dropped by the run.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, one per core).")
    args = parser.parse_args()
    if args.clips < 1:
        parser.error("--clips must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    rows: list[Row] = []
    with ExitStack() as stack:
        scratch = stack.enter_context(harness.scratch_site(args.database_url, prefix="bench-upload-"))
        from contributors.conf import clip_limits

        limits = clip_limits()
        recordings = corpus_recordings(limits)
        source = f"{len(recordings)} speechocean762-train recordings" if recordings else "synthetic speech-like"
        recordings = recordings or synthetic_recordings(2_000)
        prompt_ids = prompts_create(args.clips)
        service_contributor = contributors_create(1, "service")[0][0]

        uploads = make_uploads(recordings, start=0, count=args.clips)
        print(f"floor and service on {args.clips} clips ...", flush=True)
        with harness.single_core():
            rows.append(measure_floor(uploads, limits))
            rows.append(measure_service(uploads, service_contributor, prompt_ids))

        server = stack.enter_context(
            harness.gunicorn_server(scratch.env, args.workers, scratch.data_dir / "gunicorn.log")
        )
        for level_index, clients in enumerate(args.clients, start=1):
            tokens = [token for _, token in contributors_create(clients, f"http{level_index}")]
            uploads = make_uploads(recordings, start=level_index * args.clips, count=args.clips)
            print(f"http with {clients} clients on {args.clips} clips ...", flush=True)
            rows.append(measure_http(server, uploads, tokens, prompt_ids))
        if any(row.failures for row in rows[2:]):
            print(f"gunicorn log:\n{harness.log_tail(scratch.data_dir / 'gunicorn.log')}")

    print_report(
        rows,
        postgres_version=scratch.postgres_version,
        source=source,
        workers=args.workers,
        load_before=scratch.load_before,
    )
    return 1 if any(row.failures for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
