"""Benchmark: validating a clip through the API, ``GET /api/v1/validation/next`` then ``POST
/api/v1/clips/{id}/votes``, and the vote alone whose answer carries the next assignment (what the page does),
against their floor, ``GET /healthz``, under gunicorn; and the queue's SQL against the ``ORDER BY random()``
query it replaced.

Usage::

    .venv/bin/python benchmarks/vote_api.py [--requests N] [--clients 1,4,8] [--pending-clips N]
                                            [--background-clips N] [--workers W] [--threads T]
                                            [--database-url URL]

For each ``--clients`` level, that many threads on the same host, each a founding trustee with its own
token and ``requests.Session``, work ``--requests`` votes in all (default 600) as the validation page does,
one after another each:

1. **floor**: first, ``GET /healthz`` as many times: one ``SELECT 1`` through Django's middleware, what any
   request that touches the database costs in this stack; the peer the other rows are compared with ("vs
   floor": req/s over the floor's req/s; "p50 x floor": p50 over the floor's p50).
2. **next**: ``GET /api/v1/validation/next``, the server's pick of a clip for the trustee, recorded as an
   assignment (the previous one was closed by the vote, so every call picks anew).
3. **vote**: ``POST /api/v1/clips/{id}/votes`` on the clip just assigned (every answer must be 201), with
   the verdict the clip's seeded truth gives.
4. **next + vote**: the pair, one validated clip; its rate is the votes per second when a client asks for
   each clip.
5. **vote answering with the next clip**: then each client votes again, on the clip each answer assigns
   (one ``validation/next`` to start): one request per validated clip, the validation page's way.

The workload is the validation queue as the platform runs it. ``--pending-clips`` (default 25,000)
pending clips wait, most with no vote yet and ``IN_PROGRESS_PER_LEVEL`` at each of 1 to 5 earlier unanimous
votes by other founders (the seeders), which the queue serves first (it hands out the clips with the most
counted votes); a clip's sixth vote decides it (valid, or invalid for the 10 % whose votes say so), which
re-scores its author's trust. Authors sit near the trustee threshold (each has 5 to 20 decided clips, all
valid, beside their pending ones), so that some decisions make an author a trustee, or cost one the
status. The authors never vote, so since session 7 such a flip is exact without the full recompute
(contributors/services/trust.py, ``_author_retrust``); a flip of an author who has voted would run it over the
whole database under the exclusive trust lock (the "recomputes" count says how many ran).
``--background-clips`` (default 20,000) decided clips with six votes each by other contributors give a
recompute, and every query, a database of some size. The clients' quota is an
operator's allowance (founders seeding a crowd), so they record nothing that would join the queue. After
loading, one full recompute makes the stored state a fixed point (``TrustState.exact``), as a live
database's is, so that votes take the shared lock. After the run a full recompute must change nothing:
the incremental path left the database where a recompute puts it.

The queue's SQL, in-process on the same data before the run (``--sql-repeats`` each, default 50, for a
client who has not voted): ``validation_next_for`` (two index walks on the queue index) and, as a second
peer, the query it replaced (``ORDER BY votes_counted DESC, random() LIMIT 1`` over the eligible pending
clips, from contributors/selectors.py before the assignments), executed directly.

Rows are inserted directly (``benchmarks/trust_db.py``'s COPY loaders; every clip names one tiny dummy
audio file: the vote path never reads audio). The vote throttle (120/min by default) is raised for the
run, as it would stop a benchmark, not a trustee. gunicorn runs ``--workers`` processes (default 4) of
``--threads`` threads each (default 1: sync workers, as the Dockerfile and docker-compose.yml deploy; more
than one: the gthread worker, which keeps connections alive); both are deployment choices, reported with the
results.

**CPU ms per request**: the CPU time that gunicorn (master and workers), the PostgreSQL backends of the
benchmark's database, Redis and the client threads (this process) used during the row's run, read from /proc
(benchmarks/cpu_accounting.py), over its requests: per ``/healthz`` on the floor's row, per validated clip on the
pair's and the chain's (next, vote and pair share one window). On a shared machine the rates and latencies
follow the other jobs; the CPU per request much less, and it says what two quiet cores could serve
(2,000 ms of CPU a second over it). The load average is printed before each level.

The script creates a fresh PostgreSQL database
(``--database-url``) and drops it, and stops gunicorn, even on error.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.cpu_accounting import GROUPS, CpuMeter  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.trust_db import (  # noqa: E402
    TABLES,
    clips_load,
    loading,
    people_load,
    prompts_load,
    sequences_sync,
    vacuum,
    votes_load,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_vote_api"
SEED = 20240601
SEEDERS = 6  # founders whose earlier votes are already on the clips; six unanimous votes decide a clip
POOL_PER_AUTHOR = 9  # pending clips each author has in the queue
IN_PROGRESS_PER_LEVEL = 100  # pending clips with 1, 2, .. 5 earlier votes each; the rest have none
DECIDED_PER_AUTHOR = (5, 20)  # valid decided clips per author, inclusive: trust near the threshold
INVALID_FRACTION = 0.1  # clips whose votes say invalid
BACKGROUND_PER_AUTHOR = 20
WARM_UP = 20  # pairs before the first level, not reported
REQUEST_TIMEOUT_S = 60.0
PAIR = "next + vote (one validated clip)"
CHAIN = "vote answering with the next clip (one validated clip)"


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
    recomputes: int = 0  # full recomputes the votes ran (a flip of an author who has voted; TrustRecompute log)
    queue_empty: int = 0  # validation/next answers without a clip although clips were pending
    cpu_s: dict[str, float] | None = None  # CPU seconds by process group over the row's window (cpu_accounting)

    @property
    def cpu_ms_per_request(self) -> float | None:
        return 1000 * sum(self.cpu_s.values()) / self.requests if self.cpu_s and self.requests else None

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
    invalid: set[int]  # pending clips whose votes say invalid
    authors: list[int]
    pending: int
    clips: int
    votes: int


# --- the database ---------------------------------------------------------------------------------


def database_load(
    database_url: str, *, levels: list[int], requests_per_level: int, pending: int, background: int
) -> Plan:
    """Seeders, clients, authors and background contributors, their clips and the earlier votes, by COPY."""
    rng = np.random.default_rng(SEED)
    n_authors = -(-pending // POOL_PER_AUTHOR)
    n_background_authors = -(-background // BACKGROUND_PER_AUTHOR) if background else 0
    seeders = np.arange(1, SEEDERS + 1)
    next_id = SEEDERS + 1
    client_ids = []
    for clients in [1, *levels]:  # the warm-up client first
        client_ids.append(list(range(next_id, next_id + clients)))
        next_id += clients
    authors = np.arange(next_id, next_id + n_authors)
    background_authors = np.arange(next_id + n_authors, next_id + n_authors + n_background_authors)
    people = np.arange(1, next_id + n_authors + n_background_authors)
    founders = people < next_id
    # The clients' quota: an operator's allowance, with room to spare (a level's votes are spread round-robin).
    allowance = np.zeros(len(people), dtype=np.int64)
    allowance[SEEDERS : next_id - 1] = 2 * max(WARM_UP, requests_per_level) + 10  # pairs, then the chain

    clip_author: list[np.ndarray] = []
    clip_seeded: list[np.ndarray] = []  # earlier votes on each clip (6: decided)
    clip_invalid: list[np.ndarray] = []
    # The queue: POOL_PER_AUTHOR pending clips per author, IN_PROGRESS_PER_LEVEL of them at each of 1..5
    # earlier votes, spread over the authors at random.
    clip_author.append(np.repeat(authors, POOL_PER_AUTHOR)[:pending])
    seeded = np.zeros(pending, dtype=np.int64)
    in_progress = rng.permutation(pending)[: IN_PROGRESS_PER_LEVEL * (SEEDERS - 1)]
    seeded[in_progress] = np.repeat(np.arange(1, SEEDERS), IN_PROGRESS_PER_LEVEL)[: len(in_progress)]
    clip_seeded.append(seeded)
    clip_invalid.append(rng.random(pending) < INVALID_FRACTION)
    # Each author's decided clips, all valid: the Wilson bound of 5 of 5 is 0.566 (one more valid decision
    # makes a trustee), of 6 to 9 of as many 0.610 to 0.701 (one invalid decision costs the status).
    decided = rng.integers(DECIDED_PER_AUTHOR[0], DECIDED_PER_AUTHOR[1] + 1, n_authors)
    decided_author = np.repeat(authors, decided)
    clip_author.append(decided_author)
    clip_seeded.append(np.full(len(decided_author), SEEDERS))
    clip_invalid.append(np.zeros(len(decided_author), dtype=bool))
    # The background: decided clips by other contributors.
    background_author = np.repeat(background_authors, BACKGROUND_PER_AUTHOR)[:background]
    clip_author.append(background_author)
    clip_seeded.append(np.full(len(background_author), SEEDERS))
    clip_invalid.append(rng.random(len(background_author)) < INVALID_FRACTION)

    authors_all = np.concatenate(clip_author).astype(np.int64)
    seeded_all = np.concatenate(clip_seeded).astype(np.int64)
    invalid = np.concatenate(clip_invalid)
    clip_ids = np.arange(1, len(authors_all) + 1, dtype=np.int64)
    vote_clip = np.repeat(clip_ids, seeded_all)
    vote_voter = seeders[np.arange(len(vote_clip)) - np.repeat(np.cumsum(seeded_all) - seeded_all, seeded_all)]
    vote_valid = ~np.repeat(invalid, seeded_all)
    with loading(database_url) as conn:
        people_load(conn, ids=people.astype(np.int64), founders=founders, label="bench", allowance=allowance)
        prompts = clips_load(conn, ids=clip_ids, authors=authors_all, fixed=np.zeros(len(clip_ids), dtype=bool))
        prompts_load(conn, prompts)
        votes_load(conn, clip_ids=vote_clip, voter_ids=vote_voter.astype(np.int64), valid=vote_valid)
        sequences_sync(conn, TABLES)
    vacuum(database_url, TABLES)

    return Plan(
        client_ids=client_ids[1:],
        warm_up_client=client_ids[0][0],
        invalid={int(c) for c in clip_ids[:pending][invalid[:pending]]},
        authors=authors.tolist(),
        pending=pending,
        clips=len(clip_ids),
        votes=len(vote_clip),
    )


def tokens_for(contributor_ids: list[int]) -> list[str]:
    from rest_framework.authtoken.models import Token

    from contributors.models import Contributor

    users = dict(Contributor.objects.filter(pk__in=contributor_ids).values_list("pk", "user_id"))
    return [Token.objects.get_or_create(user_id=users[pk])[0].key for pk in contributor_ids]


def recomputes_logged() -> int:
    from contributors.models import TrustRecompute

    return TrustRecompute.objects.count()


def trustees_among(ids: list[int]) -> set[int]:
    from contributors.models import Contributor

    return set(Contributor.objects.filter(pk__in=ids, is_trustee=True).values_list("pk", flat=True))


# --- the queue's SQL --------------------------------------------------------------------------------


@dataclass
class QueueSql:
    label: str
    p50_ms: float
    p99_ms: float
    picked: int  # distinct clips among the picks


def queue_sql(contributor_id: int, repeats: int) -> list[QueueSql]:
    """``validation_next_for`` and the query it replaced, each ``repeats`` times for one contributor, on the
    data as loaded, in-process through the ORM and as their SQL alone (nothing is written: the row locks
    the new selector takes are rolled back)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from contributors.models import Clip, ClipStatus, Contributor
    from contributors.selectors import validation_next_for

    contributor = Contributor.objects.get(pk=contributor_id)
    # contributors/selectors.py before the assignments (bda18be), verbatim but for .first().
    old = (
        Clip.objects.filter(status=ClipStatus.PENDING)
        .exclude(contributor=contributor)
        .exclude(votes__voter=contributor)
        .exclude(skips__contributor=contributor)
        .exclude(reports__reporter=contributor)
        .select_related("prompt")
        .order_by("-votes_counted", "?")[:1]
    )
    old_sql, old_params = old.query.get_compiler(using="default").as_sql()

    def timed(run: Callable[[], int | None]) -> tuple[float, float, int]:
        run()  # warm-up
        latencies, picked = [], set()
        for _ in range(repeats):
            began = time.perf_counter()
            picked.add(run())
            latencies.append((time.perf_counter() - began) * 1000)
        return *_p50_p99(latencies), len(picked)

    def old_sql_run() -> int:
        with connection.cursor() as cursor:
            cursor.execute(old_sql, old_params)
            return int(cursor.fetchone()[0])

    def new_run() -> int | None:
        clip = validation_next_for(contributor=contributor, now=timezone.now())
        return clip.pk if clip else None

    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            new_run()
        new_statements = [query["sql"] for query in captured.captured_queries]

        def new_sql_run() -> int | None:  # the statements one call made (one random start), as sent
            picked = None
            with connection.cursor() as cursor:
                for statement in new_statements:
                    cursor.execute(statement)
                    row = cursor.fetchone()
                    picked = row[0] if row else picked
            return picked

        rows = [
            QueueSql("validation_next_for, in-process (prepared SQL, the clip with its prompt)", *timed(new_run)),
            QueueSql(f"its SQL alone ({len(new_statements)} statements)", *timed(new_sql_run)),
            QueueSql("peer: ORDER BY votes_counted DESC, random() LIMIT 1, through the ORM",
                     *timed(lambda: next((clip.pk for clip in old.all()), None))),
            QueueSql("peer: ORDER BY votes_counted DESC, random() LIMIT 1, its SQL alone", *timed(old_sql_run)),
        ]  # fmt: skip
        transaction.set_rollback(True)
    return rows


def _vote_body(verdict: str) -> dict[str, str]:
    """An invalid verdict names its reason (the API refuses one without)."""
    return {"verdict": verdict, "reason": "noise"} if verdict == "invalid" else {"verdict": verdict}


def _p50_p99(latencies: list[float]) -> tuple[float, float]:
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


# --- the server -----------------------------------------------------------------------------------


def spread(count: int, clients: int) -> list[int]:
    """Round-robin: how many of ``count`` items each of ``clients`` gets."""
    return [len(range(k, count, clients)) for k in range(clients)]


def measure_floor(base_url: str, tokens: list[str], n: int) -> Row:
    """Client k sends its share of ``n`` ``GET /healthz``, one after another; all clients at once."""

    def client(k: int, count: int) -> tuple[list[float], list[str]]:
        latencies, failures = [], []
        with harness.token_session(tokens[k]) as session:
            for _ in range(count):
                began = time.perf_counter()
                try:
                    response = session.get(f"{base_url}/healthz", timeout=REQUEST_TIMEOUT_S)
                    if response.status_code != 200:
                        failures.append(f"GET /healthz: {response.status_code} {response.text[:200]}")
                except requests.RequestException as exc:
                    failures.append(f"GET /healthz: {exc}")
                latencies.append((time.perf_counter() - began) * 1000)
        return latencies, failures

    clients = len(tokens)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client, range(clients), spread(n, clients)))
    elapsed = time.perf_counter() - start
    row = Row("floor: GET /healthz", clients, n, elapsed, [ms for r in results for ms in r[0]])
    row.failures = [failure for r in results for failure in r[1]]
    return row


@dataclass
class ClientLog:
    next_ms: list[float] = field(default_factory=list)
    vote_ms: list[float] = field(default_factory=list)
    pair_ms: list[float] = field(default_factory=list)
    next_failures: list[str] = field(default_factory=list)
    vote_failures: list[str] = field(default_factory=list)
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (clip status after the vote, vote ms)
    queue_empty: int = 0


def vote_logged(
    session: requests.Session, base_url: str, clip: int, invalid: set[int], log: ClientLog, *, since: float
) -> tuple[dict[str, Any] | None, float]:
    """One client's vote on ``clip`` (invalid when it is in ``invalid``), timed from ``since``: its latency, and
    the clip's status when the server took it, or the failure, go into ``log``. (The server's answer, or None when
    the vote failed; when the answer came.)"""
    verdict = "invalid" if clip in invalid else "valid"
    answer = None
    try:
        response = session.post(
            f"{base_url}/api/v1/clips/{clip}/votes", json=_vote_body(verdict), timeout=REQUEST_TIMEOUT_S
        )
        voted = time.perf_counter()
        if response.status_code != 201:
            log.vote_failures.append(f"POST votes on {clip}: {response.status_code} {response.text[:200]}")
        else:
            answer = response.json()
            log.statuses.append((answer["clip_status"], (voted - since) * 1000))
    except requests.RequestException as exc:
        voted = time.perf_counter()
        log.vote_failures.append(f"POST votes on {clip}: {exc}")
    log.vote_ms.append((voted - since) * 1000)
    return answer, voted


def run_clients(client: Callable[[int, int], ClientLog], n: int, clients: int) -> tuple[list[ClientLog], float]:
    """Run ``clients`` threads sharing ``n`` validations; their logs and the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        logs = list(pool.map(client, range(clients), spread(n, clients)))
    return logs, time.perf_counter() - start


def votes_row(path: str, logs: list[ClientLog], clients: int, elapsed: float) -> Row:
    """The votes the clients cast, as a row: latencies, failures, and the clips they decided."""
    vote_ms = [ms for log in logs for ms in log.vote_ms]
    row = Row(path, clients, len(vote_ms), elapsed, vote_ms)
    row.failures = [failure for log in logs for failure in log.vote_failures]
    for status, ms in (answer for log in logs for answer in log.statuses):
        if status != "pending":
            row.decided[status] = row.decided.get(status, 0) + 1
            row.decided_ms.append(ms)
    return row


def measure_pairs(base_url: str, tokens: list[str], n: int, invalid: set[int]) -> list[Row]:
    """Client k validates its share of ``n`` clips: ``validation/next``, then the vote on the clip assigned;
    all clients at once. Rows: next, vote, and the pair."""

    def client(k: int, count: int) -> ClientLog:
        log = ClientLog()
        with harness.token_session(tokens[k]) as session:
            for _ in range(count):
                began = time.perf_counter()
                try:
                    response = session.get(f"{base_url}/api/v1/validation/next", timeout=REQUEST_TIMEOUT_S)
                    offer = response.json() if response.status_code == 200 else {}
                    if not offer.get("clip"):
                        failure = f"{response.status_code} {response.text[:200]}"
                except (requests.RequestException, ValueError) as exc:
                    offer, failure = {}, str(exc)
                assigned = time.perf_counter()
                log.next_ms.append((assigned - began) * 1000)
                if not offer.get("clip"):
                    if offer.get("reason") == "queue_empty":
                        log.queue_empty += 1
                    else:
                        log.next_failures.append(f"GET /api/v1/validation/next: {failure}")
                    continue
                answer, voted = vote_logged(session, base_url, offer["clip"]["id"], invalid, log, since=assigned)
                if answer is not None:
                    log.pair_ms.append((voted - began) * 1000)
        return log

    clients = len(tokens)
    logs, elapsed = run_clients(client, n, clients)
    next_row = Row("GET /api/v1/validation/next", clients, n, elapsed, [ms for log in logs for ms in log.next_ms])
    next_row.failures = [failure for log in logs for failure in log.next_failures]
    next_row.queue_empty = sum(log.queue_empty for log in logs)
    vote = votes_row("POST /api/v1/clips/{id}/votes", logs, clients, elapsed)
    pair_ms = [ms for log in logs for ms in log.pair_ms]  # the clips validated: a clip assigned, a vote taken
    pair = Row(PAIR, clients, len(pair_ms), elapsed, pair_ms)
    pair.failures = next_row.failures + vote.failures
    pair.decided = dict(vote.decided)
    pair.queue_empty = next_row.queue_empty
    return [next_row, vote, pair]


def measure_chain(base_url: str, tokens: list[str], n: int, invalid: set[int]) -> Row:
    """Client k validates its share of ``n`` clips as the validation page now does: one ``validation/next``
    to start, then each vote's answer carries the next assignment, so a validated clip is one request."""

    def client(k: int, count: int) -> ClientLog:
        log = ClientLog()
        with harness.token_session(tokens[k]) as session:
            offer = session.get(f"{base_url}/api/v1/validation/next", timeout=REQUEST_TIMEOUT_S).json()
            for _ in range(count):
                if not offer.get("clip"):
                    log.queue_empty += offer.get("reason") == "queue_empty"
                    offer = session.get(f"{base_url}/api/v1/validation/next", timeout=REQUEST_TIMEOUT_S).json()
                    if not offer.get("clip"):
                        log.vote_failures.append(f"no clip offered: {offer}")
                        break
                answer, _ = vote_logged(session, base_url, offer["clip"]["id"], invalid, log, since=time.perf_counter())
                offer = (answer["next"] or {}) if answer is not None else {}
        return log

    clients = len(tokens)
    logs, elapsed = run_clients(client, n, clients)
    row = votes_row(CHAIN, logs, clients, elapsed)
    row.queue_empty = sum(log.queue_empty for log in logs)
    return row


def level_rows(base_url: str, plan: Plan, contributor_ids: list[int], n: int, meter: CpuMeter) -> list[Row]:
    """One level: the floor, the pairs (next, vote, and the pair, which share one CPU window: their CPU per
    request is per validated clip, on the pair's row) and the chain, each with its CPU time."""
    clients = len(contributor_ids)
    tokens = tokens_for(contributor_ids)
    harness.close_django_connections()
    print(f"{clients} client(s), {n} of each ...", flush=True)
    floor, floor.cpu_s = meter.measure(lambda: measure_floor(base_url, tokens, n))
    trustees_before, recomputes_before = trustees_among(plan.authors), recomputes_logged()
    harness.close_django_connections()
    rows, cpu_s = meter.measure(lambda: measure_pairs(base_url, tokens, n, plan.invalid))
    rows[-1].cpu_s = cpu_s
    flips = len(trustees_among(plan.authors) ^ trustees_before)
    harness.close_django_connections()
    recomputes = recomputes_logged() - recomputes_before
    for row in rows[1:]:
        row.trustee_flips, row.recomputes = flips, recomputes
    trustees_before, recomputes_before = trustees_among(plan.authors), recomputes_logged()
    harness.close_django_connections()
    chain, chain.cpu_s = meter.measure(lambda: measure_chain(base_url, tokens, n, plan.invalid))
    chain.trustee_flips = len(trustees_among(plan.authors) ^ trustees_before)
    chain.recomputes = recomputes_logged() - recomputes_before
    harness.close_django_connections()
    return [floor, *rows, chain]


# --- report ---------------------------------------------------------------------------------------


def print_report(
    rows: list[Row],
    sql_rows: list[QueueSql],
    *,
    plan: Plan,
    postgres_version: str,
    workers: int,
    threads: int,
    load_before: str,
) -> None:
    print()
    print(harness.machine_line(f"Python {platform.python_version()}", f"PostgreSQL {postgres_version}"))
    kind = f"gthread workers x {threads} threads" if threads > 1 else "sync workers"
    print(f"gunicorn: {workers} {kind}; clients are threads on the same host, each its own trustee and token")
    print(
        f"database: {plan.clips:,} clips ({plan.pending:,} pending), {plan.votes:,} votes before the run; "
        f"{len(plan.authors):,} authors near the trustee threshold"
    )
    print(harness.load_before_line(load_before))
    print()
    print("| path | clients | requests | req/s | p50 ms | p99 ms | CPU ms per request | vs floor | p50 x floor "
          "| decided | trustee flips | queue_empty | errors |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    floor: Row | None = None
    for row in rows:
        if row.path.startswith("floor"):
            floor = row
        assert floor is not None
        decided = ", ".join(f"{n} {status}" for status, n in sorted(row.decided.items())) if row.decided else "-"
        flips = str(row.trustee_flips) if row.path.startswith(("POST", "next", "vote")) else "-"
        cpu = f"{row.cpu_ms_per_request:.1f}" if row.cpu_ms_per_request is not None else "-"
        print(
            f"| {row.path} | {row.clients} | {row.requests} | {row.rate:.1f} | {row.latency_ms(50):.1f} | "
            f"{row.latency_ms(99):.1f} | {cpu} | {row.rate / floor.rate:.2f} | "
            f"{row.latency_ms(50) / floor.latency_ms(50):.1f} "
            f"| {decided} | {flips} | {row.queue_empty if not row.path.startswith(('floor', 'POST')) else '-'} "
            f"| {len(row.failures)} |"
        )
    print()
    print("CPU ms per request by process group (the floor per request, the others per validated clip):")
    print()
    print(f"| path | clients | {' | '.join(GROUPS)} |")
    print(f"| --- | ---: |{' ---: |' * len(GROUPS)}")
    for row in rows:
        if row.cpu_s and row.requests:
            shares = " | ".join(f"{1000 * row.cpu_s[group] / row.requests:.1f}" for group in GROUPS)
            print(f"| {row.path} | {row.clients} | {shares} |")
    print()
    for row in rows:
        if row.decided_ms:
            print(
                f"votes x{row.clients}: the {len(row.decided_ms)} that decided their clip (and re-scored its author) "
                f"p50 {np.percentile(row.decided_ms, 50):.1f} ms, p99 {np.percentile(row.decided_ms, 99):.1f} ms; "
                f"{row.trustee_flips} authors' trustee status changed; {row.recomputes} full recomputes ran (a flip "
                "of an author who has voted runs one under the exclusive lock)"
            )
    print()
    print(f"The queue's SQL with {plan.pending:,} pending clips, in-process, one client who has not voted:")
    print()
    print("| query | p50 ms | p99 ms | distinct clips picked |")
    print("| --- | ---: | ---: | ---: |")
    for sql_row in sql_rows:
        print(f"| {sql_row.label} | {sql_row.p50_ms:.2f} | {sql_row.p99_ms:.2f} | {sql_row.picked} |")
    harness.print_failures(rows)


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600, help="Validated clips per level (default 600).")
    parser.add_argument(
        "--clients",
        type=harness.client_levels,
        default="1,4,8",
        help="Concurrent clients, one level per group of rows.",
    )
    parser.add_argument(
        "--pending-clips", type=int, default=25_000, help="Pending clips in the queue (default 25,000)."
    )
    parser.add_argument(
        "--background-clips", type=int, default=20_000, help="Decided clips by other contributors (default 20,000)."
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Created and dropped by the run.")
    parser.add_argument(
        "--cache-url", default="redis://127.0.0.1:6379/5", help="The shared cache the throttles count in."
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4).")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Threads per worker (default 1: sync workers, as the Dockerfile and compose deploy; more: gthread).",
    )
    parser.add_argument("--sql-repeats", type=int, default=50, help="Runs of each queue query (default 50).")
    args = parser.parse_args()
    if args.requests < 1 or args.background_clips < 0:
        parser.error("--requests must be at least 1, --background-clips at least 0")
    needed = WARM_UP + args.requests * len(args.clients)
    if args.pending_clips < max(needed, IN_PROGRESS_PER_LEVEL * (SEEDERS - 1)):
        parser.error(f"--pending-clips must be at least {max(needed, IN_PROGRESS_PER_LEVEL * (SEEDERS - 1))}")
    if args.workers < 1 or args.threads < 1 or args.sql_repeats < 1:
        parser.error("--workers, --threads and --sql-repeats must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    rows: list[Row] = []
    with ExitStack() as stack:
        # The vote throttle (120/min) would stop the benchmark, not a trustee; it still runs on every vote.
        # The throttles count in the shared cache: Redis, as docker-compose.yml deploys (without it, one upsert and
        # commit on the database per request).
        env = {"THROTTLE_VOTES": "1000000/min", "CACHE_URL": args.cache_url}
        scratch = stack.enter_context(harness.scratch_site(args.database_url, prefix="bench-vote-api-", env=env))

        from contributors.models import TrustState
        from contributors.services.trust import trust_recompute_all

        plan = database_load(
            args.database_url,
            levels=args.clients,
            requests_per_level=args.requests,
            pending=args.pending_clips,
            background=args.background_clips,
        )
        summary = trust_recompute_all(trigger="benchmark")  # statuses and trust as the votes make them
        if not TrustState.objects.get(pk=1).exact:
            raise SystemExit("the loaded crowd has no exact fixed point; every vote would run a full recompute")
        harness.close_django_connections()
        vacuum(args.database_url, ["contributors_clip", "contributors_contributor"])  # as autovacuum would
        print(
            f"loaded {plan.clips:,} clips and {plan.votes:,} votes; a full recompute decided "
            f"{summary.clips_changed:,} clips and made {summary.trustees:,} trustees in {summary.seconds:.2f} s",
            flush=True,
        )
        sql_rows = queue_sql(plan.client_ids[0][0], args.sql_repeats)
        harness.close_django_connections()

        server = stack.enter_context(
            harness.gunicorn_server(scratch.env, args.workers, scratch.data_dir / "gunicorn.log", threads=args.threads)
        )
        meter = CpuMeter(gunicorn_bind=urlsplit(server).netloc, database=urlsplit(args.database_url).path.lstrip("/"))
        warm_up = level_rows(server, plan, [plan.warm_up_client], WARM_UP, meter)
        if any(row.failures for row in warm_up):
            rows += warm_up
        for contributor_ids in plan.client_ids:
            print(f"load average (1/5/15 min): {harness.load_average()}", flush=True)
            rows += level_rows(server, plan, contributor_ids, args.requests, meter)
        if any(row.failures for row in rows):
            print(f"gunicorn log:\n{harness.log_tail(scratch.data_dir / 'gunicorn.log')}")
        after = trust_recompute_all(trigger="benchmark")
        harness.close_django_connections()

    print_report(
        rows,
        sql_rows,
        plan=plan,
        postgres_version=scratch.postgres_version,
        workers=args.workers,
        threads=args.threads,
        load_before=scratch.load_before,
    )
    queue_empty = sum(row.queue_empty for row in rows if row.path == PAIR)
    if queue_empty:
        print(
            f"\nvalidation/next answered queue_empty {queue_empty} times although thousands of clips were pending: "
            "every eligible clip at the most-voted level was row-locked by a concurrent assignment"
        )
    consistent = after.clips_changed == 0 and after.contributors_changed == 0
    print(
        f"\na full recompute after the run changed {after.clips_changed} clips and {after.contributors_changed} "
        f"contributors ({after.seconds:.2f} s): {'consistent' if consistent else 'INCONSISTENT'}"
    )
    return 1 if any(row.failures for row in rows) or not consistent else 0


if __name__ == "__main__":
    sys.exit(main())
