"""Benchmark: the vote API (``POST /api/v1/clips/{id}/votes``) against its floor, ``GET /healthz``, under gunicorn.

Usage::

    .venv/bin/python benchmarks/vote_api.py [--requests N] [--clients 1,4,8] [--background-clips N]
                                            [--database-url URL] [--workers W]

For each ``--clients`` level, that many threads on the same host, each a founding trustee with its own
token and ``requests.Session``, send ``--requests`` requests in all (default 600), one after another each,
three ways in turn:

1. **floor**: ``GET /healthz``, one ``SELECT 1`` through Django's middleware: what any request that touches
   the database costs in this stack, the peer the other rows are compared with ("vs floor": req/s over
   the floor's req/s; "p50 x floor": p50 over the floor's p50).
2. **next**: ``GET /api/v1/validation/next``, the server's pick of a clip for the trustee (read-only here).
3. **vote**: ``POST /api/v1/clips/{id}/votes``, each on a distinct pending clip by another contributor,
   so that no vote is refused (every answer must be 201).

The workload makes statuses move as they do on the platform: every pending clip already carries 0 to 5
unanimous votes from other founders (uniformly), so about one vote in six is the sixth and decides the
clip (valid, or invalid for the 10 % of clips whose votes say so), which re-scores the author's trust.
Authors sit near the trustee threshold (each has 16 to 22 clips of which 7 to 13 are decided, nearly all
valid), so some decisions make an author a trustee, or cost one the status, and run the full recompute over
the whole database, as the incremental path does. ``--background-clips`` (default 20,000) decided clips
with six votes each by other contributors give that recompute, and every query, a database of some size.
Each trustee has submitted as many clips as it will vote on (the quota rule). After the run a full
recompute must change nothing: the incremental path left the database where a recompute puts it.

Rows are inserted directly (``benchmarks/trust_db.py``'s COPY loaders; every clip names one tiny dummy
audio file: the vote path never reads audio). The vote throttle (120/min by default) is raised for the
run, as it would stop a benchmark, not a trustee. The script creates a fresh PostgreSQL database
(``--database-url``) and drops it, and stops gunicorn, even on error.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.trust_db import (  # noqa: E402  (needs ROOT on sys.path)
    TABLES,
    clips_load,
    loading,
    people_load,
    prompts_load,
    sequences_sync,
    vacuum,
    votes_load,
)
from benchmarks.upload import (  # noqa: E402
    bench_database,
    close_django_connections,
    cpu_model,
    django_setup,
    gunicorn_server,
    load_average,
    log_tail,
    service_env,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_vote_api"
SEED = 20240601
SEEDERS = 6  # founders whose earlier votes are already on the clips; six unanimous votes decide a clip
POOL_PER_AUTHOR = 9  # pending clips each author has in the pool the clients vote on
INVALID_FRACTION = 0.1  # clips whose votes say invalid
WARM_UP = 20  # requests of each kind before the first level, not reported
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Row:
    path: str
    clients: int
    requests: int
    elapsed_s: float
    latencies_ms: list[float]
    failures: list[str] = field(default_factory=list)
    decided: dict[str, int] = field(default_factory=dict)  # vote answers: the clip's status when not pending
    decided_ms: list[float] = field(default_factory=list)  # latencies of the votes that decided their clip
    trustee_flips: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.latencies_ms, percentile)) if self.latencies_ms else float("nan")


@dataclass
class Plan:
    """Who is who in the loaded database."""

    client_ids: list[list[int]]  # per level, the contributor ids of its clients (founders)
    warm_up_client: int
    pool: list[int]  # pending clips, in the order they are handed out
    pool_seeded: dict[int, int]  # clip id -> earlier votes on it
    invalid: set[int]  # pool clips whose votes say invalid
    authors: list[int]
    clips: int
    votes: int


# --- the database ---------------------------------------------------------------------------------


def database_load(database_url: str, *, levels: list[int], requests_per_level: int, background: int) -> Plan:
    """Seeders, clients, authors and background contributors, their clips and the earlier votes, by COPY."""
    rng = np.random.default_rng(SEED)
    pool_size = WARM_UP + requests_per_level * len(levels)
    n_authors = -(-pool_size // POOL_PER_AUTHOR)
    n_background_authors = -(-background // 20) if background else 0
    seeders = np.arange(1, SEEDERS + 1)
    next_id = SEEDERS + 1
    client_ids = []
    for clients in [1, *levels]:  # the warm-up client first
        client_ids.append(list(range(next_id, next_id + clients)))
        next_id += clients
    authors = np.arange(next_id, next_id + n_authors)
    background_authors = np.arange(authors[-1] + 1, authors[-1] + 1 + n_background_authors)
    people = np.arange(1, background_authors[-1] + 1 if n_background_authors else authors[-1] + 1)
    founders = people <= client_ids[-1][-1]

    clip_author: list[np.ndarray] = []
    clip_seeded: list[np.ndarray] = []  # earlier votes on each clip (6: decided)
    clip_invalid: list[np.ndarray] = []
    # Pool clips, POOL_PER_AUTHOR per author, 0..5 earlier votes each.
    pool_author = np.repeat(authors, POOL_PER_AUTHOR)[:pool_size]
    clip_author.append(pool_author)
    clip_seeded.append(rng.integers(0, SEEDERS, pool_size))
    clip_invalid.append(rng.random(pool_size) < INVALID_FRACTION)
    # Each author's decided clips: 7..13 of them, so that trust (valid - invalid) / clips sits near 0.6.
    decided = rng.integers(7, 14, n_authors)
    decided_author = np.repeat(authors, decided)
    clip_author.append(decided_author)
    clip_seeded.append(np.full(len(decided_author), SEEDERS))
    clip_invalid.append(rng.random(len(decided_author)) < 0.02)
    # The background: decided clips by other contributors.
    background_author = np.repeat(background_authors, 20)[:background]
    clip_author.append(background_author)
    clip_seeded.append(np.full(len(background_author), SEEDERS))
    clip_invalid.append(rng.random(len(background_author)) < INVALID_FRACTION)
    # The clients' own clips, unvoted: their quota.
    quota = [np.repeat(ids, WARM_UP if level == 0 else -(-requests_per_level // len(ids)) + 1)
             for level, ids in enumerate(client_ids)]  # fmt: skip
    client_clips = np.concatenate(quota)
    clip_author.append(client_clips)
    clip_seeded.append(np.zeros(len(client_clips), dtype=np.int64))
    clip_invalid.append(np.zeros(len(client_clips), dtype=bool))

    authors_all = np.concatenate(clip_author).astype(np.int64)
    seeded = np.concatenate(clip_seeded).astype(np.int64)
    invalid = np.concatenate(clip_invalid)
    clip_ids = np.arange(1, len(authors_all) + 1, dtype=np.int64)
    vote_clip = np.repeat(clip_ids, seeded)
    vote_voter = seeders[np.arange(len(vote_clip)) - np.repeat(np.cumsum(seeded) - seeded, seeded)]
    vote_valid = ~np.repeat(invalid, seeded)
    with loading(database_url) as conn:
        people_load(conn, ids=people.astype(np.int64), founders=founders, label="bench")
        prompts = clips_load(conn, ids=clip_ids, authors=authors_all, fixed=np.zeros(len(clip_ids), dtype=bool))
        prompts_load(conn, prompts)
        votes_load(conn, clip_ids=vote_clip, voter_ids=vote_voter.astype(np.int64), valid=vote_valid)
        sequences_sync(conn, TABLES)
    vacuum(database_url, TABLES)

    pool = clip_ids[:pool_size]
    order = rng.permutation(pool_size)  # authors' clips spread over the run, not one author at a time
    return Plan(
        client_ids=client_ids[1:],
        warm_up_client=client_ids[0][0],
        pool=pool[order].tolist(),
        pool_seeded=dict(zip(pool.tolist(), seeded[:pool_size].tolist(), strict=True)),
        invalid={int(c) for c in pool[invalid[:pool_size]]},
        authors=authors.tolist(),
        clips=len(clip_ids),
        votes=len(vote_clip),
    )


def tokens_for(contributor_ids: list[int]) -> list[str]:
    from rest_framework.authtoken.models import Token

    from contributors.models import Contributor

    users = dict(Contributor.objects.filter(pk__in=contributor_ids).values_list("pk", "user_id"))
    return [Token.objects.create(user_id=users[pk]).key for pk in contributor_ids]


def trustees_among(ids: list[int]) -> set[int]:
    from contributors.models import Contributor

    return set(Contributor.objects.filter(pk__in=ids, is_trustee=True).values_list("pk", flat=True))


# --- measurements ---------------------------------------------------------------------------------


def measure(
    base_url: str, path: str, tokens: list[str], work: list[list[tuple[str, str, dict | None]]], expect: int
) -> Row:
    """Client k sends work[k] (method, url path, JSON body) one request after another; all clients at once."""
    clients = len(tokens)

    def client(k: int) -> tuple[list[float], list[str], list[tuple[str, float]]]:
        latencies, failures, statuses = [], [], []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {tokens[k]}"
            for method, url, body in work[k]:
                began = time.perf_counter()
                try:
                    response = session.request(method, f"{base_url}{url}", json=body, timeout=REQUEST_TIMEOUT_S)
                    if response.status_code != expect:
                        failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                    elif body is not None:
                        statuses.append((response.json()["clip_status"], (time.perf_counter() - began) * 1000))
                except requests.RequestException as exc:
                    failures.append(f"{method} {url}: {exc}")
                latencies.append((time.perf_counter() - began) * 1000)
        return latencies, failures, statuses

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    row = Row(path, clients, sum(len(w) for w in work), elapsed, [ms for r in results for ms in r[0]])
    row.failures = [failure for r in results for failure in r[1]]
    for status, ms in (answer for r in results for answer in r[2]):
        if status != "pending":
            row.decided[status] = row.decided.get(status, 0) + 1
            row.decided_ms.append(ms)
    return row


def spread(items: list, clients: int) -> list[list]:
    """Round-robin: client k gets items k, k + clients, ..."""
    return [items[k::clients] for k in range(clients)]


def level_rows(base_url: str, plan: Plan, clip_queue: list[int], contributor_ids: list[int], n: int) -> list[Row]:
    clients = len(contributor_ids)
    tokens = tokens_for(contributor_ids)
    print(f"{clients} client(s), {n} requests each way ...", flush=True)
    floor = measure(base_url, "floor: GET /healthz", tokens, spread([("GET", "/healthz", None)] * n, clients), 200)
    following = measure(
        base_url,
        "GET /api/v1/validation/next",
        tokens,
        spread([("GET", "/api/v1/validation/next", None)] * n, clients),
        200,
    )
    clips = [clip_queue.pop() for _ in range(n)]
    votes = [
        ("POST", f"/api/v1/clips/{clip}/votes", {"verdict": "invalid" if clip in plan.invalid else "valid"})
        for clip in clips
    ]
    trustees_before = trustees_among(plan.authors)
    vote = measure(base_url, "POST /api/v1/clips/{id}/votes", tokens, spread(votes, clients), 201)
    vote.trustee_flips = len(trustees_among(plan.authors) ^ trustees_before)
    expected = sum(plan.pool_seeded[clip] == SEEDERS - 1 for clip in clips)
    if sum(vote.decided.values()) != expected and not vote.failures:
        vote.failures.append(f"{sum(vote.decided.values())} clips decided, {expected} expected (5 earlier votes)")
    return [floor, following, vote]


# --- report ---------------------------------------------------------------------------------------


def print_report(rows: list[Row], *, plan: Plan, postgres_version: str, workers: int, load_before: str) -> None:
    print()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {postgres_version}"
    )
    print(f"gunicorn: {workers} sync workers; clients are threads on the same host, each its own trustee and token")
    print(
        f"database: {plan.clips:,} clips, {plan.votes:,} votes before the run; {len(plan.authors)} authors near "
        "the trustee threshold"
    )
    print(f"load average before the run (1/5/15 min): {load_before}; other work on the machine skews every row")
    print()
    print("| path | clients | requests | req/s | p50 ms | p99 ms | vs floor | p50 x floor | decided | trustee flips "
          "| errors |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    floor: Row | None = None
    for row in rows:
        if row.path.startswith("floor"):
            floor = row
        assert floor is not None
        decided = ", ".join(f"{n} {status}" for status, n in sorted(row.decided.items())) if row.decided else "-"
        flips = str(row.trustee_flips) if row.path.startswith("POST") else "-"
        print(
            f"| {row.path} | {row.clients} | {row.requests} | {row.rate:.1f} | {row.latency_ms(50):.1f} | "
            f"{row.latency_ms(99):.1f} | {row.rate / floor.rate:.2f} | {row.latency_ms(50) / floor.latency_ms(50):.1f} "
            f"| {decided} | {flips} | {len(row.failures)} |"
        )
    print()
    for row in rows:
        if row.decided_ms:
            print(
                f"votes x{row.clients}: the {len(row.decided_ms)} that decided their clip (and re-scored its author) "
                f"p50 {np.percentile(row.decided_ms, 50):.1f} ms, p99 {np.percentile(row.decided_ms, 99):.1f} ms; "
                f"{row.trustee_flips} authors' trustee status changed, each change a full recompute"
            )
    for row in rows:
        for failure in row.failures[:5]:
            print(f"  {row.path} x{row.clients}: {failure}")


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="Requests per row (default 600).")
    parser.add_argument("--clients", default="1,4,8", help="Concurrent clients, one level per group of rows.")
    parser.add_argument(
        "--background-clips", type=int, default=20_000, help="Decided clips by other contributors (default 20,000)."
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Created and dropped by the run.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, one per core).")
    args = parser.parse_args()
    args.clients = [int(level) for level in args.clients.split(",") if level.strip()]
    if args.requests < 1 or not args.clients or min(args.clients) < 1 or args.background_clips < 0:
        parser.error("--requests and every --clients level must be at least 1, --background-clips at least 0")
    return args


def main() -> int:
    args = parse_args()
    load_before = load_average()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rows: list[Row] = []
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-vote-api-")))
        postgres_version = stack.enter_context(bench_database(args.database_url))
        # The vote throttle (120/min) would stop the benchmark, not a trustee; it still runs on every vote.
        env = {**service_env(args.database_url, data_dir), "THROTTLE_VOTES": "1000000/min"}
        print(f"setting up {args.database_url} and Django in {data_dir} ...", flush=True)
        django_setup(env)
        stack.callback(close_django_connections)  # before the database is dropped

        from contributors.services.trust import trust_recompute_all

        plan = database_load(
            args.database_url, levels=args.clients, requests_per_level=args.requests, background=args.background_clips
        )
        summary = trust_recompute_all(trigger="benchmark")  # statuses and trust as the votes make them
        print(
            f"loaded {plan.clips:,} clips and {plan.votes:,} votes; a full recompute decided "
            f"{summary.clips_changed:,} clips and made {summary.trustees:,} trustees in {summary.seconds:.2f} s",
            flush=True,
        )
        close_django_connections()
        clip_queue = list(reversed(plan.pool))

        server = stack.enter_context(gunicorn_server(env, args.workers, data_dir / "gunicorn.log"))
        warm_up = level_rows(server, plan, clip_queue, [plan.warm_up_client], WARM_UP)
        if any(row.failures for row in warm_up):
            rows += warm_up
        for contributor_ids in plan.client_ids:
            rows += level_rows(server, plan, clip_queue, contributor_ids, args.requests)
            close_django_connections()
        if any(row.failures for row in rows):
            print(f"gunicorn log:\n{log_tail(data_dir / 'gunicorn.log')}")
        after = trust_recompute_all(trigger="benchmark")
        close_django_connections()

    print_report(rows, plan=plan, postgres_version=postgres_version, workers=args.workers, load_before=load_before)
    consistent = after.clips_changed == 0 and after.contributors_changed == 0
    print(
        f"\na full recompute after the run changed {after.clips_changed} clips and {after.contributors_changed} "
        f"contributors ({after.seconds:.2f} s): {'consistent' if consistent else 'INCONSISTENT'}"
    )
    return 1 if any(row.failures for row in rows) or not consistent else 0


if __name__ == "__main__":
    sys.exit(main())
