"""Load test: contributors and trustees using the platform at once for minutes, a Celery worker SIGKILLed and
restarted in the middle, and afterwards a check that nothing was lost or counted twice.

Usage::

    .venv/bin/python benchmarks/load.py [--minutes 10] [--contributors 40] [--trustees 10] [--workers 4]
                                        [--kill-at 0.4] [--database-url URL] [--redis-url URL] [--json FILE]

The stack is the deployed one on this machine: gunicorn (``--workers`` sync workers) over PostgreSQL, Redis as
the Celery broker and the shared cache (throttles, lock-outs), and one Celery worker with beat consuming the
clip-analysis queue, as docker-compose runs them. ``--contributors`` client threads (default 40) each record
through the API as the record page does: upload a clip (``POST /api/v1/clips/``, real speech from
``../shared/data/speechocean762-train``, 3 of 5 uploads as 16 kHz FLAC, 2 as 44.1 / 48 kHz stereo WAV, every
upload a distinct recording) on the next sentence, and after each set of five ask for their progress
(``GET /api/v1/me/progress``), as the page polls it. ``--trustees`` threads (default 10, founding trustees)
validate as the validation page does: ``GET /api/v1/validation/next`` once, then each vote's answer carries the
next assignment; 5 % of clips get "invalid" (reason "noise"); an empty queue is asked again after a second.
Every client thinks ``--think`` seconds between requests (default 0.2 s; trustees at least 0.55 s, which keeps
them under the deployed votes throttle of 120 a minute, so a 429 is a finding, not the plan). Contributors
become trustees as their clips are validated, as on the platform, but only the founders' threads vote.

At ``--kill-at`` of the run (default 0.4) the Celery worker's whole process group gets SIGKILL mid-stream and a
new worker starts 2 s later, as a supervisor would restart it. A clip analysis the killed worker held is not
redelivered by Redis before the visibility timeout (12 h, so that long training runs are not handed out
twice); the beat schedule's ``clips_analyse_missing`` sweep re-enqueues it once it has been left for 10 minutes.
After the run the script sends that sweep every 30 s (beat sends it every 15 minutes) until every clip is analysed,
and reports how long that took.

The peer, measured in the same run before the load: ``GET /healthz`` (one ``SELECT 1`` through the middleware)
from the same number of clients, flat out for 20 s.

Checks after the run (each must hold; the script exits 1 otherwise):
- every 201 upload answered a clip id that has exactly one row, whose audio file exists and decodes; no audio
  file in storage without a row; no (contributor, prompt) pair with two clips;
- every 201 vote has exactly one row (voter, clip) and there are no other votes;
- every clip was analysed (``analysed_at`` set, no ``analysis_error``);
- the stored trust state equals a full recompute (``trust_check``, what ``manage.py trust_recompute --check``
  runs);
- no 5xx and no transport error.

It creates a fresh PostgreSQL database (``--database-url``) and a temporary DATA_DIR, uses Redis databases
``--redis-url`` (broker) and the next number (cache) after flushing both, and tears everything down, even on
error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.upload import (  # noqa: E402
    UPLOAD_KINDS,
    Recording,
    Upload,
    contributors_create,
    corpus_recordings,
    make_upload,
    synthetic_recordings,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
REQUEST_TIMEOUT_S = 120.0
SET_SIZE = 5
INVALID_SHARE = 0.05
TRUSTEE_MIN_THINK_S = 0.55  # 60 / 120 votes a minute, the deployed throttle, plus a margin
DRAIN_TIMEOUT_S = 900.0
SWEEP_EVERY_S = 30.0


@dataclass
class Call:
    endpoint: str
    status: int  # 0: transport error
    ms: float


@dataclass
class Log:
    calls: list[Call] = field(default_factory=list)
    uploads: list[tuple[int, int, int]] = field(default_factory=list)  # (clip id, contributor id, prompt id)
    votes: list[tuple[int, int]] = field(default_factory=list)  # (voter id, clip id)
    errors: list[str] = field(default_factory=list)

    def record(self, endpoint: str, began: float, response: requests.Response | None, note: str = "") -> None:
        status = response.status_code if response is not None else 0
        self.calls.append(Call(endpoint, status, (time.perf_counter() - began) * 1000))
        if status == 0 or status >= 500:
            self.errors.append(f"{endpoint}: {status} {note or (response.text[:200] if response is not None else '')}")


# --- set-up (in-process, before the server starts) -------------------------------------------------


def prompts_create(count: int) -> list[int]:
    from contributors.models import Prompt

    made = Prompt.objects.bulk_create(
        Prompt(text=f"Load sentence number {i}.", normalised_text=f"load sentence number {i}", source="load")
        for i in range(count)
    )
    return [prompt.pk for prompt in made]


def founders_create(count: int) -> list[tuple[int, str]]:
    from contributors.services.trust import founders_set

    made = contributors_create(count, "founder")
    founders_set(usernames=[c.user.username for c, _ in made], founding=True, allowance=1_000_000)
    return [(c.pk, token) for c, token in made]


# --- the processes -----------------------------------------------------------------------------------


def worker_start(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A Celery worker with beat on the default queue, in its own process group (so SIGKILL reaches the pool)."""
    command = [sys.executable, "-m", "celery", "-A", "config.worker", "worker", "--beat", "-Q", "default",
               "--concurrency", "1", "--loglevel", "WARNING"]  # fmt: skip
    log = log_path.open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log, start_new_session=True
    )


def worker_kill(worker: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()


@contextmanager
def supervised_worker(env: dict[str, str], log_path: Path):
    state = {"worker": worker_start(env, log_path)}
    try:
        yield state
    finally:
        worker = state["worker"]
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker_kill(worker)


# --- the clients -------------------------------------------------------------------------------------


def upload_for(recordings: list[Recording], index: int) -> Upload:
    """The ``index``-th of an endless sequence of distinct recordings (a recording used again comes back with a
    slightly different gain), in the mix of formats the browser and other clients send."""
    variant, position = divmod(index, len(recordings))
    return make_upload(recordings[position], UPLOAD_KINDS[index % len(UPLOAD_KINDS)], variant, name=f"clip-{index}")


def contributor_client(
    base_url: str,
    token: str,
    contributor_id: int,
    prompt_ids: list[int],
    uploads: Callable[[int], Upload],
    stop: threading.Event,
    think: float,
) -> Log:
    """Records sentence after sentence; ``uploads(n)`` is the n-th take (encoded when it is sent, as a browser
    encodes after Stop)."""
    log = Log()
    with harness.token_session(token) as session:
        for n, prompt_id in enumerate(prompt_ids):
            if stop.is_set():
                break
            upload = uploads(n)
            began = time.perf_counter()
            try:
                response = session.post(
                    f"{base_url}/api/v1/clips/",
                    data={"prompt": str(prompt_id)},
                    files={"audio": (upload.filename, upload.data, upload.content_type)},
                    timeout=REQUEST_TIMEOUT_S,
                )
            except requests.RequestException as exc:
                log.record("POST clips", began, None, str(exc))
            else:
                log.record("POST clips", began, response)
                if response.status_code == 201:
                    log.uploads.append((response.json()["id"], contributor_id, prompt_id))
            if (n + 1) % SET_SIZE == 0:
                began = time.perf_counter()
                try:
                    log.record("GET me/progress", began, session.get(f"{base_url}/api/v1/me/progress", timeout=30))
                except requests.RequestException as exc:
                    log.record("GET me/progress", began, None, str(exc))
            stop.wait(think)
    return log


def trustee_client(base_url: str, token: str, voter_id: int, stop: threading.Event, think: float, seed: int) -> Log:
    log, rng = Log(), random.Random(seed)
    offer: dict = {}
    with harness.token_session(token) as session:
        while not stop.is_set():
            if not offer.get("clip"):
                began = time.perf_counter()
                try:
                    response = session.get(f"{base_url}/api/v1/validation/next", timeout=30)
                except requests.RequestException as exc:
                    log.record("GET validation/next", began, None, str(exc))
                    stop.wait(1.0)
                    continue
                log.record("GET validation/next", began, response)
                offer = response.json() if response.status_code == 200 else {}
                if not offer.get("clip"):
                    stop.wait(1.0)
                    continue
            clip = offer["clip"]["id"]
            body = {"verdict": "invalid", "reason": "noise"} if rng.random() < INVALID_SHARE else {"verdict": "valid"}
            began = time.perf_counter()
            try:
                response = session.post(f"{base_url}/api/v1/clips/{clip}/votes", json=body, timeout=30)
            except requests.RequestException as exc:
                log.record("POST votes", began, None, str(exc))
                offer = {}
                continue
            log.record("POST votes", began, response)
            if response.status_code == 201:
                log.votes.append((voter_id, clip))
                offer = response.json().get("next") or {}
            else:
                offer = {}
            stop.wait(think)
    return log


def floor_client(base_url: str, stop: threading.Event) -> Log:
    log = Log()
    with requests.Session() as session:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                log.record("peer: GET /healthz", began, session.get(f"{base_url}/healthz", timeout=30))
            except requests.RequestException as exc:
                log.record("peer: GET /healthz", began, None, str(exc))
    return log


def run_for(seconds: float, clients: list) -> tuple[list[Log], float]:
    """Run every client (a function of the stop event) for ``seconds``; their logs and the wall time."""
    stop = threading.Event()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(client, stop) for client in clients]
        stop.wait(seconds)
        stop.set()
        logs = [future.result() for future in futures]
    return logs, time.perf_counter() - started


# --- checks ------------------------------------------------------------------------------------------


def drain(celery_env: dict[str, str], timeout: float) -> float:
    """Wait until every clip is analysed, sending the analysis sweep every ``SWEEP_EVERY_S`` as beat would (beat
    sends it every 15 minutes; it re-enqueues clips left unanalysed for 10 minutes, such as the one a killed
    worker held: Redis gives that message back only after its 12-hour visibility timeout)."""
    from celery import Celery

    from contributors.models import Clip

    app = Celery(broker=celery_env["CELERY_BROKER_URL"])
    started = last_sweep = time.monotonic()
    while time.monotonic() - started < timeout:
        if not Clip.objects.filter(analysed_at__isnull=True, analysis_error="").exists():
            break
        if time.monotonic() - last_sweep >= SWEEP_EVERY_S:
            app.send_task("contributors.tasks.clips_analyse_missing", queue="default")
            last_sweep = time.monotonic()
        time.sleep(1.0)
    return time.monotonic() - started


def checks(logs: list[Log], media_root: Path) -> dict[str, object]:
    import soundfile

    from contributors.models import Clip, Vote
    from contributors.services.trust import trust_check

    uploads = [u for log in logs for u in log.uploads]
    answered = Counter(clip_id for clip_id, _, _ in uploads)
    clips = {c.pk: c for c in Clip.objects.all()}
    missing_rows = [i for i in answered if i not in clips]
    unanswered_rows = [i for i in clips if i not in answered]
    pairs = Counter((c.contributor_id, c.prompt_id) for c in clips.values())
    missing_files, unreadable = [], []
    for clip in clips.values():
        path = media_root / clip.audio.name
        if not path.is_file():
            missing_files.append(clip.pk)
            continue
        try:
            soundfile.info(str(path))
        except RuntimeError:
            unreadable.append(clip.pk)
    referenced = {media_root / c.audio.name for c in clips.values()}
    audio_dir = media_root / "clips"
    stray = [p for p in audio_dir.rglob("*") if p.is_file() and p not in referenced] if audio_dir.exists() else []

    votes_sent = Counter(v for log in logs for v in log.votes)
    stored = Counter(Vote.objects.values_list("voter_id", "clip_id"))
    trust = trust_check(limit=20)
    return {
        "uploads_201": len(uploads),
        "clip_rows": len(clips),
        "answered_ids_without_row": len(missing_rows),
        "ids_answered_twice": sum(1 for n in answered.values() if n > 1),
        "rows_nobody_was_answered": len(unanswered_rows),
        "prompt_pairs_with_two_clips": sum(1 for n in pairs.values() if n > 1),
        "rows_without_file": len(missing_files),
        "files_not_decodable": len(unreadable),
        "files_without_row": len(stray),
        "votes_201": sum(votes_sent.values()),
        "vote_rows": sum(stored.values()),
        "votes_answered_without_row": sum(1 for v in votes_sent if v not in stored),
        "vote_rows_nobody_was_answered": sum(1 for v in stored if v not in votes_sent),
        "clips_not_analysed": sum(1 for c in clips.values() if c.analysed_at is None),
        "clips_analysis_failed": sum(1 for c in clips.values() if c.analysis_error),
        "analysis_attempts": dict(sorted(Counter(c.analysis_attempts for c in clips.values()).items())),
        "clips_by_status": dict(Counter(c.status for c in clips.values())),
        "trust_differences": trust.total,
        "trust_first_differences": [str(d) for d in trust.differences[:5]],
    }


FAILING_IF_NONZERO = (
    "answered_ids_without_row", "ids_answered_twice", "rows_nobody_was_answered", "prompt_pairs_with_two_clips",
    "rows_without_file", "files_not_decodable", "files_without_row", "votes_answered_without_row",
    "vote_rows_nobody_was_answered", "clips_not_analysed", "clips_analysis_failed", "trust_differences",
)  # fmt: skip


# --- report --------------------------------------------------------------------------------------------


def endpoint_rows(logs: list[Log], elapsed: float) -> list[dict[str, object]]:
    by_endpoint: dict[str, list[Call]] = defaultdict(list)
    for log in logs:
        for call in log.calls:
            by_endpoint[call.endpoint].append(call)
    rows = []
    for endpoint, calls in by_endpoint.items():
        ms = np.array([c.ms for c in calls])
        statuses = Counter(c.status for c in calls)
        rows.append(
            {
                "endpoint": endpoint,
                "requests": len(calls),
                "per_s": len(calls) / elapsed,
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "2xx": sum(n for s, n in statuses.items() if 200 <= s < 300),
                "4xx": {str(s): n for s, n in sorted(statuses.items()) if 400 <= s < 500},
                "5xx": sum(n for s, n in statuses.items() if s >= 500),
                "transport_errors": statuses.get(0, 0),
            }
        )
    return rows


def print_report(floor: list[dict], load: list[dict], result: dict, args: argparse.Namespace, meta: dict) -> None:
    print(
        f"\nbenchmarks/load.py: {args.contributors} contributors + {args.trustees} trustees for "
        f"{meta['elapsed_s']:.0f} s, "
        f"gunicorn {args.workers} sync workers, PostgreSQL {meta['postgres']}, Redis broker and cache, one Celery "
        f"worker SIGKILLed at {meta['killed_at_s']:.0f} s and restarted; {meta['cpu']}, {os.cpu_count()} cores; "
        f"load average before: {meta['load_before']}; audio: {meta['source']}\n"
    )
    floor_p50 = floor[0]["p50_ms"] if floor else float("nan")
    print("| endpoint | requests | req/s | p50 ms | p99 ms | p50 x peer | 2xx | 4xx | 5xx | transport errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for row in [*floor, *load]:
        four = ", ".join(f"{k}: {v}" for k, v in row["4xx"].items()) or "0"
        print(
            f"| {row['endpoint']} | {row['requests']} | {row['per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['p50_ms'] / floor_p50:.1f} | {row['2xx']} | {four} | {row['5xx']} | {row['transport_errors']} |"
        )
    print(f"\nAfter the run (analysis drained in {meta['drain_s']:.0f} s):")
    for key, value in result.items():
        mark = " ✗" if key in FAILING_IF_NONZERO and value else ""
        print(f"- {key}: {value}{mark}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--contributors", type=int, default=40)
    parser.add_argument("--trustees", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--think", type=float, default=0.2, help="seconds each client waits between requests")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of the run at which the worker is killed")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="the broker; the next database is the cache")
    parser.add_argument("--json", type=Path, help="write the figures and checks here")
    args = parser.parse_args()
    if not 0 < args.kill_at < 1 or args.minutes <= 0 or args.contributors < 1 or args.trustees < 1:
        parser.error("--kill-at must be in (0, 1); --minutes, --contributors and --trustees positive")
    return args


def main() -> int:
    args = parse_args()
    seconds = args.minutes * 60
    base, _, number = args.redis_url.rpartition("/")
    cache_url = f"{base}/{int(number) + 1}"
    for url in (args.redis_url, cache_url):
        redis.Redis.from_url(url).flushdb()
    with ExitStack() as stack:
        services = {"CELERY_BROKER_URL": args.redis_url, "CACHE_URL": cache_url}
        scratch = stack.enter_context(harness.scratch_site(args.database_url, prefix="bench-load-", env=services))
        env, data_dir, postgres = scratch.env, scratch.data_dir, scratch.postgres_version
        from contributors.audio import ClipLimits

        recordings = corpus_recordings(ClipLimits()) or synthetic_recordings(2000)
        source = "speechocean762 (real speech)" if recordings[0].path else "synthetic speech-like audio"
        per_contributor = int(seconds / max(args.think, 0.05)) + 1  # more than a client can send
        prompt_ids = prompts_create(per_contributor)
        authors = [(c.pk, token) for c, token in contributors_create(args.contributors, "author")]
        founders = founders_create(args.trustees)
        harness.close_django_connections()
        print(f"set up: {len(prompt_ids)} prompts, {len(authors)} contributors, {len(founders)} founders", flush=True)

        logs_dir = data_dir / "logs"
        logs_dir.mkdir()
        worker = stack.enter_context(supervised_worker(env, logs_dir / "worker.log"))
        base_url = stack.enter_context(harness.gunicorn_server(env, args.workers, logs_dir / "gunicorn.log"))

        clients_n = args.contributors + args.trustees
        floor_logs, floor_s = run_for(20.0, [lambda stop: floor_client(base_url, stop)] * clients_n)
        floor = endpoint_rows(floor_logs, floor_s)

        def contributor(k: int):
            pk, token = authors[k]

            def uploads(n: int) -> Upload:  # interleaved, so that every client's takes are distinct recordings
                return upload_for(recordings, n * args.contributors + k)

            return lambda stop: contributor_client(base_url, token, pk, prompt_ids, uploads, stop, args.think)

        clients = [contributor(k) for k in range(args.contributors)]

        def trustee(k: int):
            pk, token = founders[k]
            think = max(args.think, TRUSTEE_MIN_THINK_S)
            return lambda stop: trustee_client(base_url, token, pk, stop, think, seed=k)

        clients += [trustee(k) for k in range(len(founders))]

        killed_at = seconds * args.kill_at

        def killer() -> None:
            time.sleep(killed_at)
            worker_kill(worker["worker"])
            time.sleep(2.0)
            worker["worker"] = worker_start(env, logs_dir / "worker.log")
            print(f"worker SIGKILLed at {killed_at:.0f} s and restarted", flush=True)

        threading.Thread(target=killer, daemon=True).start()
        logs, elapsed = run_for(seconds, clients)
        load = endpoint_rows(logs, elapsed)

        harness.django_setup(env)  # migrate is a no-op now; it gives this process its connection again
        drain_s = drain(env, DRAIN_TIMEOUT_S)
        result = checks(logs, data_dir / "media")
        errors = [e for log in logs for e in log.errors]
        result["5xx_and_transport_errors"] = len(errors)
        meta = {"elapsed_s": elapsed, "killed_at_s": killed_at, "drain_s": drain_s, "postgres": postgres,
                "cpu": harness.cpu_model(), "load_before": scratch.load_before, "source": source}  # fmt: skip
        print_report(floor, load, result, args, meta)
        for line in errors[:10]:
            print("  ", line)
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "peer": floor, "load": load, "checks": result}, indent=2))
        harness.close_django_connections()
        failed = [k for k in (*FAILING_IF_NONZERO, "5xx_and_transport_errors") if result[k]]
        if failed:
            print(f"\nFAILED: {', '.join(failed)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
