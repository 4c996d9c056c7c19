"""Benchmark: ``trust_recompute_all`` on PostgreSQL, phase by phase, against the pure engine on the same arrays.

Usage::

    .venv/bin/python benchmarks/trust_db.py [--sizes CLIPS:VOTES:PEOPLE,...] [--baseline-max-votes N]
                                            [--database-url URL]

For each size (default 100,000 clips / 1,000,000 votes / 10,000 contributors, then 1,000,000 / 10,000,000 /
100,000) the script loads the seeded synthetic crowd of ``benchmarks/trust.py`` into a fresh PostgreSQL
database through binary COPY (duplicate (clip, voter) pairs and votes on one's own clip dropped; 1 % of the
clips imported with a fixed status), then times a full recompute in its three phases, inside the
transaction and under the trust lock as ``trust_recompute_all`` runs them:

1. **snapshot**: ``trust_snapshot``, contributors, clips and votes into the engine's index arrays;
2. **engine**: ``TrustSnapshot.run``, the fixed point;
3. **write-back**: read the stored statuses and trust, write the rows that differ.

Two scenarios: **first**, every clip pending and every trust 0 (after an import, or the first recompute
of a database whose statuses were never computed: nearly every row is written), and **steady**, straight
after (nothing differs, the periodic backstop's usual case). Then ``trust_recompute_all()`` itself, end to
end, in the steady state. The peer is the pure engine, ``contributors.trust.trust_recompute``, on the same
arrays (best of 3): "vs engine" is a row's total over it, what the database costs on top of the maths.

The **before** rows run the ORM implementation this benchmark replaced (``values_list`` into Python
tuples, ``bulk_update``; kept below verbatim) on the same database from the same starting state, for sizes
up to ``--baseline-max-votes`` (default 1,000,000; it takes minutes beyond). Where both run, the script
checks that they read identical arrays and leave identical rows and summaries.

The database is created and dropped by the run (``--database-url``; the server's ``postgres`` database is
used to create and drop it). Loading the 10 M-vote size takes about two minutes of the total.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.trust import crowd_synthesise  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.upload import (  # noqa: E402
    bench_database,
    close_django_connections,
    cpu_model,
    django_setup,
    load_average,
    service_env,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_trust_db"
DEFAULT_SIZES = "100000:1000000:10000,1000000:10000000:100000"
SEED = 20240601
IMPORTED_FRACTION = 0.01
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


# --- loading synthetic data through binary COPY (also used by benchmarks/vote_api.py) -------------


def psycopg_url(database_url: str) -> str:
    return urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))


def copy_binary(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """A COPY ... (FORMAT BINARY) payload for fixed-width columns: (NumPy dtype code, values) each."""
    layout = [("fields", ">i2")]
    for i, (code, _) in enumerate(columns):
        layout += [(f"length{i}", ">i4"), (f"value{i}", f">{code}")]
    n = len(columns[0][1]) if columns else 0
    records = np.empty(n, dtype=np.dtype(layout))
    records["fields"] = len(columns)
    for i, (code, values) in enumerate(columns):
        records[f"length{i}"] = np.dtype(code).itemsize
        records[f"value{i}"] = values
    return COPY_SIGNATURE + bytes(8) + records.tobytes() + b"\xff\xff"


_SQL_TYPES = {"i8": "bigint", "i4": "integer", "f8": "double precision", "?": "boolean"}


def stage(conn: psycopg.Connection, name: str, columns: dict[str, tuple[str, np.ndarray]]) -> None:
    """A temporary table ``name`` holding ``columns`` (name -> (NumPy dtype code, values)), by binary COPY."""
    definition = ", ".join(f"{column} {_SQL_TYPES[code]}" for column, (code, _) in columns.items())
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TEMPORARY TABLE {name} ({definition})")
    with conn.cursor().copy(f"COPY {name} FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(copy_binary(list(columns.values())))


def people_load(conn: psycopg.Connection, *, ids: np.ndarray, founders: np.ndarray, label: str) -> None:
    """Users and contributors with the ids ``ids`` (user id = contributor id); founders are trustees with
    trust 1, as the engine leaves them. Passwords are unusable: nobody logs in, clients use tokens."""
    stage(conn, "people", {"id": ("i8", ids), "founder": ("?", founders)})
    conn.execute(
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,"
        " is_active, date_joined)"
        " SELECT id, '!', false, %s || '-' || id, '', '', '', false, true, now() FROM people",
        (label,),
    )
    conn.execute(
        "INSERT INTO contributors_contributor (id, user_id, speaker_id, age_band, gender, accent, first_language,"
        " cc0_consent_at, is_founding_trustee, trust, is_trustee, created_at)"
        " SELECT id, id, 'spk-bench-' || id, '', '', '', '', now(), founder, CASE WHEN founder THEN 1 ELSE 0 END,"
        " founder, now() FROM people"
    )


def prompts_load(conn: psycopg.Connection, count: int) -> None:
    """Prompts 1 .. count: a contributor's k-th clip reads prompt k (one clip per contributor and prompt)."""
    conn.execute(
        "INSERT INTO contributors_prompt (id, text, normalised_text, words, phones, prompt_type, is_active,"
        " source, created_at)"
        " SELECT n, 'Benchmark sentence ' || n || '.', 'benchmark sentence ' || n, '[]', '[]', 'diverse', true,"
        " 'benchmark', now() FROM generate_series(1, %s) AS n",
        (count,),
    )


def clip_prompts(authors: np.ndarray) -> np.ndarray:
    """Each clip's prompt id: its rank among its author's clips, plus one."""
    order = np.argsort(authors, kind="stable")
    sorted_authors = authors[order]
    starts = np.flatnonzero(np.r_[True, sorted_authors[1:] != sorted_authors[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(authors)]))
    ranks = np.empty(len(authors), dtype=np.int64)
    ranks[order] = np.arange(len(authors)) - run_start
    return ranks + 1


@contextmanager
def indexes_deferred(conn: psycopg.Connection, table: str) -> Iterator[None]:
    """Drop ``table``'s indexes and unique constraints but the primary key, and build them again on the way
    out: one sort per index instead of millions of random inserts."""
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        (table,),
    ).fetchall()
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = %s::regclass AND NOT indisprimary"
        " AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass)",
        (table, table),
    ).fetchall()
    for name, _ in constraints:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for _, definition in indexes:
        conn.execute(definition)
    for name, definition in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
            + sql.SQL(definition)
        )


def clips_load(conn: psycopg.Connection, *, ids: np.ndarray, authors: np.ndarray, fixed: np.ndarray) -> int:
    """Clip rows, pending (or valid and fixed when imported), all naming one tiny dummy audio file: the
    trust engine and the vote path never read audio. Returns the number of prompts they need."""
    prompts = clip_prompts(authors)
    stage(
        conn,
        "clips",
        {"id": ("i8", ids), "contributor_id": ("i8", authors), "prompt_id": ("i8", prompts), "fixed": ("?", fixed)},
    )
    with indexes_deferred(conn, "contributors_clip"):
        conn.execute(
            "INSERT INTO contributors_clip (id, contributor_id, prompt_id, audio, sha256, duration_s, original_format,"
            " original_sample_rate, original_channels, original_bytes, rms_dbfs, peak_dbfs, clipping_ratio, status,"
            " score, votes_counted, votes_valid_counted, status_fixed, provenance, created_at, updated_at)"
            " SELECT id, contributor_id, prompt_id, 'clips/bench.flac', lpad(to_hex(id), 64, '0'), 3.0, 'flac',"
            " 16000, 1, 48000, -20.0, -3.0, 0.0, CASE WHEN fixed THEN 'valid' ELSE 'pending' END, 0, 0, 0, fixed,"
            " CASE WHEN fixed THEN 'imported' ELSE 'recorded' END, now(), now() FROM clips"
        )
    return int(prompts.max()) if len(prompts) else 0


def votes_load(conn: psycopg.Connection, *, clip_ids: np.ndarray, voter_ids: np.ndarray, valid: np.ndarray) -> None:
    stage(conn, "votes", {"clip_id": ("i8", clip_ids), "voter_id": ("i8", voter_ids), "valid": ("?", valid)})
    with indexes_deferred(conn, "contributors_vote"):
        conn.execute(
            "INSERT INTO contributors_vote (clip_id, voter_id, verdict, created_at)"
            " SELECT clip_id, voter_id, CASE WHEN valid THEN 'valid' ELSE 'invalid' END, now() FROM votes"
        )


def sequences_sync(conn: psycopg.Connection, tables: list[str]) -> None:
    """Identity columns past the ids loaded explicitly, so that later inserts through Django work."""
    for table in tables:
        query = sql.SQL(
            "SELECT setval(pg_get_serial_sequence({}, 'id'), (SELECT coalesce(max(id), 0) + 1 FROM {}), false)"
        )
        conn.execute(query.format(sql.Literal(table), sql.Identifier(table)))


@contextmanager
def loading(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection for bulk loading: foreign-key triggers off (the data is consistent by construction;
    checking ten million references one by one would dominate the load), one transaction."""
    with psycopg.connect(psycopg_url(database_url)) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        yield conn


def vacuum(database_url: str, tables: list[str]) -> None:
    """As a live database would be: hint bits set, visibility map current, statistics fresh."""
    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")


TABLES = ["auth_user", "contributors_contributor", "contributors_prompt", "contributors_clip", "contributors_vote"]


# --- the synthetic crowd in the database ------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    clips: int
    votes: int
    contributors: int

    def label(self) -> str:
        return f"{self.clips:,} clips / {self.votes:,} votes / {self.contributors:,} people"


def crowd_load(database_url: str, size: Size) -> tuple[int, float]:
    """Empty the tables and load the crowd; returns (votes kept, seconds)."""
    started = time.perf_counter()
    crowd = crowd_synthesise(clips=size.clips, votes=size.votes, contributors=size.contributors, seed=SEED)
    rng = np.random.default_rng(SEED + 1)
    fixed = rng.random(size.clips) < IMPORTED_FRACTION
    # The schema allows one vote per (clip, voter) and none on one's own clip: drop what the sampler drew
    # twice, and the rare neighbour's clip that was the voter's own after all.
    key = crowd.vote_clip * size.contributors + crowd.vote_voter
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    keep &= crowd.vote_voter != crowd.clip_author[crowd.vote_clip]
    people = np.arange(1, size.contributors + 1, dtype=np.int64)
    clip_ids = np.arange(1, size.clips + 1, dtype=np.int64)
    with loading(database_url) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}, contributors_trustrecompute RESTART IDENTITY CASCADE")
        people_load(conn, ids=people, founders=crowd.founders, label="bench")
        prompts = clips_load(conn, ids=clip_ids, authors=people[crowd.clip_author], fixed=fixed)
        prompts_load(conn, prompts)
        votes_load(
            conn,
            clip_ids=clip_ids[crowd.vote_clip[keep]],
            voter_ids=people[crowd.vote_voter[keep]],
            valid=crowd.vote_valid[keep],
        )
        sequences_sync(conn, TABLES)
    vacuum(database_url, TABLES)
    return int(keep.sum()), time.perf_counter() - started


def state_reset(database_url: str) -> None:
    """Back to "statuses never computed": clips pending (imported ones keep their status), trust 0, founders 1."""
    with psycopg.connect(psycopg_url(database_url)) as conn:
        conn.execute(
            "UPDATE contributors_clip SET status = CASE WHEN status_fixed THEN status ELSE 'pending' END, score = 0,"
            " votes_counted = 0, votes_valid_counted = 0"
        )
        conn.execute(
            "UPDATE contributors_contributor SET trust = CASE WHEN is_founding_trustee THEN 1 ELSE 0 END,"
            " is_trustee = is_founding_trustee"
        )
    vacuum(database_url, ["contributors_clip", "contributors_contributor"])


def state_fingerprint(database_url: str) -> tuple[str, str]:
    """md5 of every clip's and contributor's trust columns, in id order (floats print exactly)."""
    with psycopg.connect(psycopg_url(database_url)) as conn:
        clips = conn.execute(
            "SELECT md5(string_agg(concat_ws(',', id, status, score, votes_counted, votes_valid_counted), ';'"
            " ORDER BY id)) FROM contributors_clip"
        ).fetchone()[0]
        people = conn.execute(
            "SELECT md5(string_agg(concat_ws(',', id, trust, is_trustee), ';' ORDER BY id))"
            " FROM contributors_contributor"
        ).fetchone()[0]
    return str(clips), str(people)


# --- before: the ORM implementation, verbatim from contributors/services/trust.py at 1206c82 --------


def orm_snapshot() -> Any:  # a TrustSnapshot; Django's models load only after setup
    from contributors.models import Clip, Contributor, Verdict, Vote
    from contributors.services.trust import _STATUS_CODE, NO_AUTHOR, NO_FIXED_STATUS, TrustSnapshot

    contributors = np.array(
        list(Contributor.objects.order_by("id").values_list("id", "is_founding_trustee")), dtype=np.int64
    ).reshape(-1, 2)
    clips = list(Clip.objects.order_by("id").values_list("id", "contributor_id", "status", "status_fixed"))
    votes = np.array(list(Vote.objects.values_list("clip_id", "voter_id", "verdict")), dtype=object).reshape(-1, 3)
    contributor_ids = contributors[:, 0]
    clip_ids = np.array([c[0] for c in clips], dtype=np.int64)
    authors = np.searchsorted(contributor_ids, np.array([c[1] for c in clips], dtype=np.int64))
    fixed = np.array([bool(c[3]) for c in clips], dtype=bool)
    clip_author = np.where(fixed, NO_AUTHOR, authors).astype(np.int64)
    clip_fixed = np.array([int(_STATUS_CODE[c[2]]) if c[3] else NO_FIXED_STATUS for c in clips], dtype=np.int64)
    return TrustSnapshot(
        contributor_ids=contributor_ids,
        founders=contributors[:, 1].astype(bool),
        clip_ids=clip_ids,
        clip_author=clip_author,
        clip_fixed=clip_fixed,
        vote_clip=np.searchsorted(clip_ids, votes[:, 0].astype(np.int64)),
        vote_voter=np.searchsorted(contributor_ids, votes[:, 1].astype(np.int64)),
        vote_valid=votes[:, 2] == Verdict.VALID,
    )


def orm_write_back(snapshot: Any, result: Any, summary: Any) -> None:
    from contributors.models import Clip, Contributor
    from contributors.services.trust import _CODE_STATUS

    new_clip = {
        int(pk): (_CODE_STATUS[int(status)], float(score), int(counted), int(valid))
        for pk, status, score, counted, valid in zip(
            snapshot.clip_ids,
            result.clip_status,
            result.clip_score,
            result.clip_counted,
            result.clip_valid_counted,
            strict=True,
        )
    }
    changed_clips = []
    for clip in Clip.objects.only("id", "status", "score", "votes_counted", "votes_valid_counted").iterator(
        chunk_size=5000
    ):
        status, score, counted, valid = new_clip[clip.pk]
        if (clip.status, clip.score, clip.votes_counted, clip.votes_valid_counted) != (status, score, counted, valid):
            if clip.status != status:
                summary.status_changes[(clip.status, status)] += 1
            clip.status, clip.score, clip.votes_counted, clip.votes_valid_counted = status, score, counted, valid
            changed_clips.append(clip)
    Clip.objects.bulk_update(
        changed_clips, ["status", "score", "votes_counted", "votes_valid_counted"], batch_size=2000
    )
    summary.clips_changed = len(changed_clips)

    new_contributor = {
        int(pk): (float(trust), bool(trustee))
        for pk, trust, trustee in zip(snapshot.contributor_ids, result.contributor_trust, result.trustees, strict=True)
    }
    changed_contributors = []
    for contributor in Contributor.objects.only("id", "trust", "is_trustee").iterator(chunk_size=5000):
        trust, trustee = new_contributor[contributor.pk]
        if (contributor.trust, contributor.is_trustee) != (trust, trustee):
            summary.trustees_gained += int(trustee and not contributor.is_trustee)
            summary.trustees_lost += int(contributor.is_trustee and not trustee)
            contributor.trust, contributor.is_trustee = trust, trustee
            changed_contributors.append(contributor)
    Contributor.objects.bulk_update(changed_contributors, ["trust", "is_trustee"], batch_size=2000)
    summary.contributors_changed = len(changed_contributors)


def new_write_back(snapshot: Any, result: Any, summary: Any) -> None:
    from contributors.services.trust import _clips_write_back, _contributors_write_back

    _clips_write_back(snapshot, result, summary)
    _contributors_write_back(snapshot, result, summary)


# --- measurements ---------------------------------------------------------------------------------


@dataclass
class Row:
    size: Size
    implementation: str  # "before (ORM)", "after (COPY)", "trust_recompute_all()"
    scenario: str  # "first", "steady"
    snapshot_s: float
    engine_s: float
    write_s: float
    total_s: float
    clips_written: int
    people_written: int


@dataclass
class Phased:
    row: Row
    snapshot: Any
    summary: Any


def recompute_phased(
    size: Size,
    implementation: str,
    scenario: str,
    snapshot_of: Callable[[], Any],
    write_back: Callable[[Any, Any, Any], None],
) -> Phased:
    """One full recompute as ``trust_recompute_all`` runs it (one transaction, the trust lock), timed by
    phase; the TrustRecompute log row is left out of the phases and counted in the total."""
    from django.db import transaction

    from contributors.models import TrustRecompute
    from contributors.services.trust import TrustRecomputeSummary, trust_lock

    started = time.perf_counter()
    with transaction.atomic():
        trust_lock()
        t0 = time.perf_counter()
        snapshot = snapshot_of()
        t1 = time.perf_counter()
        result = snapshot.run()
        t2 = time.perf_counter()
        summary = TrustRecomputeSummary(
            iterations=result.iterations,
            cycle_resolved=result.cycle_resolved,
            capped=result.capped,
            trustees=int(result.trustees.sum()),
        )
        write_back(snapshot, result, summary)
        t3 = time.perf_counter()
        TrustRecompute.objects.create(
            seconds=t3 - started,
            iterations=summary.iterations,
            cycle_resolved=summary.cycle_resolved,
            capped=summary.capped,
            clips_changed=summary.clips_changed,
            contributors_changed=summary.contributors_changed,
            trustees=summary.trustees,
            trigger="benchmark",
        )
    total = time.perf_counter() - started
    row = Row(
        size, implementation, scenario, t1 - t0, t2 - t1, t3 - t2, total, summary.clips_changed,
        summary.contributors_changed,
    )  # fmt: skip
    print(
        f"  {implementation}, {scenario}: snapshot {row.snapshot_s:.2f} s, engine {row.engine_s:.2f} s, "
        f"write-back {row.write_s:.2f} s ({row.clips_written:,} clips, {row.people_written:,} people), "
        f"total {row.total_s:.2f} s",
        flush=True,
    )
    return Phased(row, snapshot, summary)


def recompute_all_timed(size: Size) -> Row:
    from contributors.services.trust import trust_recompute_all

    started = time.perf_counter()
    summary = trust_recompute_all(trigger="benchmark")
    total = time.perf_counter() - started
    print(f"  trust_recompute_all(), steady: {total:.2f} s ({summary.clips_changed} clips written)", flush=True)
    return Row(
        size, "trust_recompute_all()", "steady", float("nan"), float("nan"), float("nan"), total,
        summary.clips_changed, summary.contributors_changed,
    )  # fmt: skip


def engine_alone(snapshot: Any, repeats: int = 3) -> float:
    """The peer: the pure engine on the snapshot's arrays, best of ``repeats``."""
    from contributors.conf import trust_params
    from contributors.trust import trust_recompute

    params = trust_params()
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        trust_recompute(
            vote_clip=snapshot.vote_clip,
            vote_voter=snapshot.vote_voter,
            vote_valid=snapshot.vote_valid,
            clip_author=snapshot.clip_author,
            founders=snapshot.founders,
            clip_fixed=snapshot.clip_fixed,
            params=params,
        )
        best = min(best, time.perf_counter() - began)
    return best


def snapshots_equal(a: Any, b: Any) -> bool:
    """The same arrays, votes compared as a multiset (their order differs and does not matter to the engine)."""
    for name in ("contributor_ids", "founders", "clip_ids", "clip_author", "clip_fixed"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            return False

    def votes(s: Any) -> np.ndarray:
        return np.sort((s.vote_clip.astype(np.int64) * len(s.contributor_ids) + s.vote_voter) * 2 + s.vote_valid)

    return np.array_equal(votes(a), votes(b))


def summaries_equal(a: Any, b: Any) -> bool:
    names = [f.name for f in fields(a) if f.name != "seconds"]
    return all((Counter(getattr(a, n)) if n == "status_changes" else getattr(a, n)) == getattr(b, n) for n in names)


def measure_size(database_url: str, size: Size, *, baseline: str) -> tuple[list[Row], float, list[str]]:
    """The rows for one size, the engine-alone peer time, and any equivalence failures. ``baseline``: which
    scenarios the ORM implementation runs too ("both", "steady" or "none")."""
    from contributors.services.trust import trust_snapshot

    print(f"{size.label()}: loading ...", flush=True)
    kept, seconds = crowd_load(database_url, size)
    print(f"  loaded {kept:,} votes (after dropping duplicates and own-clip votes) in {seconds:.0f} s", flush=True)
    rows: list[Row] = []
    failures: list[str] = []
    before: dict[str, Phased] = {}
    first_rows = ("", "")
    if baseline == "both":
        state_reset(database_url)
        before["first"] = recompute_phased(size, "before (ORM)", "first", orm_snapshot, orm_write_back)
        first_rows = state_fingerprint(database_url)
        before["steady"] = recompute_phased(size, "before (ORM)", "steady", orm_snapshot, orm_write_back)
    state_reset(database_url)
    after = {"first": recompute_phased(size, "after (COPY)", "first", trust_snapshot, new_write_back)}
    if baseline == "both" and state_fingerprint(database_url) != first_rows:
        failures.append(f"{size.label()}: the rows written differ from the ORM implementation's")
    after["steady"] = recompute_phased(size, "after (COPY)", "steady", trust_snapshot, new_write_back)
    if baseline == "steady":  # the state is the fixed point already: the ORM's steady run is comparable
        before["steady"] = recompute_phased(size, "before (ORM)", "steady", orm_snapshot, orm_write_back)
    rows += [phased.row for phased in before.values()]
    rows += [after["first"].row, after["steady"].row, recompute_all_timed(size)]
    for scenario, phased in before.items():
        if not snapshots_equal(phased.snapshot, after[scenario].snapshot):
            failures.append(f"{size.label()}, {scenario}: the snapshot arrays differ from the ORM's")
        if not summaries_equal(phased.summary, after[scenario].summary):
            failures.append(
                f"{size.label()}, {scenario}: summaries differ: {phased.summary} != {after[scenario].summary}"
            )
    before.clear()  # the ORM's snapshot holds gigabytes at the largest size
    peer = engine_alone(after["steady"].snapshot)
    print(f"  engine alone (best of 3): {peer:.3f} s", flush=True)
    return rows, peer, failures


# --- report ---------------------------------------------------------------------------------------


def seconds_cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: not a phase of this row


def print_report(results: list[tuple[list[Row], float]], *, postgres_version: str, load_before: str) -> None:
    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, PostgreSQL {postgres_version}, NumPy {np.__version__}")
    print(f"load average before the run (1/5/15 min): {load_before}")
    print("first: every status pending and every trust 0 beforehand; steady: the same recompute straight after")
    print()
    print("| size | implementation | scenario | snapshot s | engine s | write-back s | total s | clips written "
          "| people written | vs engine alone |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows, peer in results:
        for row in rows:
            print(
                f"| {row.size.label()} | {row.implementation} | {row.scenario} | {seconds_cell(row.snapshot_s)} | "
                f"{seconds_cell(row.engine_s)} | {seconds_cell(row.write_s)} | {row.total_s:.3f} | "
                f"{row.clips_written:,} | {row.people_written:,} | {row.total_s / peer:.1f}x |"
            )
        print(f"| {rows[0].size.label()} | peer: engine alone (best of 3) | - | - | {peer:.3f} | - | {peer:.3f} "
              "| - | - | 1.0x |")  # fmt: skip


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"CLIPS:VOTES:PEOPLE,... (default {DEFAULT_SIZES})")
    parser.add_argument(
        "--baseline-max-votes",
        type=int,
        default=1_000_000,
        help="run the ORM implementation (before) in both scenarios up to this many votes (default 1,000,000)",
    )
    parser.add_argument(
        "--baseline-steady-max-votes",
        type=int,
        default=10_000_000,
        help="and in the steady scenario alone up to this many (default 10,000,000; its first scenario would "
        "take a quarter of an hour there)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Created and dropped by the run.")
    args = parser.parse_args()
    try:
        args.sizes = [Size(*(int(part) for part in item.split(":"))) for item in args.sizes.split(",") if item]
    except TypeError:
        parser.error("--sizes takes CLIPS:VOTES:PEOPLE triples separated by commas")
    if not args.sizes or any(min(s.clips, s.votes, s.contributors) < 1 for s in args.sizes):
        parser.error("every size needs at least one clip, vote and contributor")
    return args


def main() -> int:
    args = parse_args()
    load_before = load_average()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results: list[tuple[list[Row], float]] = []
    failures: list[str] = []
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-trust-db-")))
        postgres_version = stack.enter_context(bench_database(args.database_url))
        env = service_env(args.database_url, data_dir)
        print(f"setting up {args.database_url} ...", flush=True)
        django_setup(env)
        stack.callback(close_django_connections)  # before the database is dropped
        for size in args.sizes:
            if size.votes <= args.baseline_max_votes:
                baseline = "both"
            elif size.votes <= args.baseline_steady_max_votes:
                baseline = "steady"
            else:
                baseline = "none"
            rows, peer, size_failures = measure_size(args.database_url, size, baseline=baseline)
            results.append((rows, peer))
            failures += size_failures
    print_report(results, postgres_version=postgres_version, load_before=load_before)
    for failure in failures:
        print(f"MISMATCH: {failure}")
    if not failures:
        print("\nwhere both ran, before and after read identical arrays and left identical rows and summaries")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
