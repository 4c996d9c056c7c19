"""Benchmark: ``trust_recompute_all`` on PostgreSQL, phase by phase, against the pure engine on the same arrays.

Usage::

    .venv/bin/python benchmarks/trust_db.py [--sizes CLIPS:VOTES:PEOPLE,...] [--new-votes N]
                                            [--baseline-max-votes N] [--baseline-steady-max-votes N]
                                            [--database-url URL]

For each size (default 100,000 clips / 1,000,000 votes / 10,000 contributors, then 1,000,000 / 10,000,000 /
100,000) the script loads the seeded synthetic crowd of ``benchmarks/trust.py`` into a fresh PostgreSQL
database through binary COPY (duplicate (clip, voter) pairs and votes on one's own clip dropped; 1 % of the
clips imported with a fixed status), then calls the real ``trust_recompute_all()`` and times it end to end
(its transaction, the trust lock, the TrustRecompute log row) and by phase, as the service times itself
(``TrustRecomputeSummary.phases``):

1. **snapshot**: ``trust_snapshot``, contributors, clips and votes into the engine's index arrays, with the
   stored statuses and trust the write-back compares with;
2. **engine**: ``TrustSnapshot.run``, the fixed point from the stored trustees;
3. **write-back**: ``_clips_write_back`` and ``_contributors_write_back``, the rows that differ.

Scenarios, in this order: **first**, every clip pending and every trust 0 (after an import, or the first
recompute of a database whose statuses were never computed: nearly every row is written); **steady:
nothing changed**, three times for the spread (the periodic backstop's usual case: the stored state is
the fixed point; the first recompute's million dead row versions are vacuumed before, as autovacuum
would); then twice **N new votes inserted, absorbed**: ``--new-votes`` (default 5,000) votes by current
trustees on random clips, 95 % of them right about the clip's synthetic truth, inserted behind the
services' back, which the recompute must absorb (the write-back has their clips to write, and the fixed
point may move), and **steady: after those N votes**, the next recompute: the stored state is then what
the incremental path keeps after votes cast through the API (each vote brings it to the full
recompute's), with the new votes in.
The peer is the pure engine, ``TrustSnapshot.run`` on the steady snapshot's arrays (best of 3): "vs engine
alone" is a row's total over it, what the database costs on top of the maths.

The **before (ORM)** rows run the ORM implementation the COPY path replaced (``values_list`` into Python
tuples, ``bulk_update``; kept below, reading the stored trustees as a recompute now starts from them) in
``trust_recompute_all``'s place of the snapshot and write-back, on the same database from the same
starting state: in the steady scenario up to ``--baseline-steady-max-votes`` (default 10,000,000, about
25 s there), in the first too up to ``--baseline-max-votes`` (default 0; it takes minutes beyond 100,000
votes). Where both run, the script checks that they read the same arrays and leave the same rows and
summaries.

The database is created and dropped by the run (``--database-url``; the server's ``postgres`` database is
used to create and drop it). Loading the 10 M-vote size takes about two minutes of the total, its first
recompute another (a million rows updated through the clip table's indexes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.trust import crowd_synthesise  # noqa: E402  (needs ROOT on sys.path)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_trust_db"
DEFAULT_SIZES = "100000:1000000:10000,1000000:10000000:100000"
SEED = 20240601
IMPORTED_FRACTION = 0.01
STEADY_REPEATS = 3
NEW_VOTE_ACCURACY = 0.95  # votes added between recomputes agree with the clip's synthetic truth this often
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


def people_load(
    conn: psycopg.Connection,
    *,
    ids: np.ndarray,
    founders: np.ndarray,
    label: str,
    allowance: np.ndarray | None = None,
) -> None:
    """Users and contributors with the ids ``ids`` (user id = contributor id); founders are trustees with
    trust 1, as the engine leaves them; ``allowance`` is each one's extra vote allowance (0 when omitted).
    Passwords are unusable: nobody logs in, clients use tokens."""
    if allowance is None:
        allowance = np.zeros(len(ids), dtype=np.int64)
    stage(conn, "people", {"id": ("i8", ids), "founder": ("?", founders), "allowance": ("i8", allowance)})
    conn.execute(
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,"
        " is_active, date_joined)"
        " SELECT id, '!', false, %s || '-' || id, '', '', '', false, true, now() FROM people",
        (label,),
    )
    conn.execute(
        "INSERT INTO contributors_contributor (id, user_id, speaker_id, age_band, gender, accent, first_language,"
        " cc0_consent_at, is_founding_trustee, vote_allowance, trust, is_trustee, created_at, guardian_email)"
        " SELECT id, id, 'spk-bench-' || id, '', '', '', '', now(), founder, allowance,"
        " CASE WHEN founder THEN 1 ELSE 0 END, founder, now(), '' FROM people"
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
    trust engine and the vote path never read audio. Each clip's queue key is a seeded uniform draw, as
    ``Clip.queue_key`` is. Returns the number of prompts they need."""
    prompts = clip_prompts(authors)
    queue_keys = np.random.default_rng(SEED + 2).random(len(ids))
    stage(
        conn,
        "clips",
        {
            "id": ("i8", ids),
            "contributor_id": ("i8", authors),
            "prompt_id": ("i8", prompts),
            "fixed": ("?", fixed),
            "queue_key": ("f8", queue_keys),
        },
    )
    # An imported clip names its corpus (constraint clip_source_iff_imported): one stand-in source for them all.
    conn.execute(
        "INSERT INTO contributors_corpussource (name, licence, url, citation, created_at, updated_at)"
        " VALUES ('bench-corpus', 'CC-BY-4.0', '', 'Benchmark stand-in corpus.', now(), now())"
        " ON CONFLICT (name) DO NOTHING"
    )
    with indexes_deferred(conn, "contributors_clip"):
        conn.execute(
            "INSERT INTO contributors_clip (id, contributor_id, prompt_id, audio, sha256, duration_s, original_format,"
            " original_sample_rate, original_channels, original_bytes, rms_dbfs, peak_dbfs, clipping_ratio, status,"
            " score, votes_counted, votes_valid_counted, status_fixed, provenance, source_id, queue_key, created_at,"
            " updated_at)"
            " SELECT id, contributor_id, prompt_id, 'clips/bench.flac', lpad(to_hex(id), 64, '0'), 3.0, 'flac',"
            " 16000, 1, 48000, -20.0, -3.0, 0.0, CASE WHEN fixed THEN 'valid' ELSE 'pending' END, 0, 0, 0, fixed,"
            " CASE WHEN fixed THEN 'imported' ELSE 'recorded' END,"
            " CASE WHEN fixed THEN (SELECT id FROM contributors_corpussource WHERE name = 'bench-corpus') END,"
            " queue_key, now(), now() FROM clips"
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


def crowd_load(database_url: str, size: Size) -> tuple[int, float, np.ndarray]:
    """Empty the tables and load the crowd; returns (votes kept, seconds, each clip's synthetic truth)."""
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
    return int(keep.sum()), time.perf_counter() - started, crowd.clip_truth


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


# --- new votes between two recomputes --------------------------------------------------------------


def votes_add(database_url: str, truth: np.ndarray, count: int, seed: int) -> int:
    """``count`` new votes by current trustees on clips drawn at random, right with probability
    ``NEW_VOTE_ACCURACY`` about the clip's synthetic ``truth`` (clip id k is ``truth[k - 1]``), inserted
    directly as votes that arrived since the last recompute; pairs already voted and one's own clips are
    skipped. Returns the votes inserted."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(psycopg_url(database_url)) as conn:
        trustees = np.array(
            [row[0] for row in conn.execute("SELECT id FROM contributors_contributor WHERE is_trustee")], dtype=np.int64
        )
        if not len(trustees) or not len(truth):
            return 0
        clips = rng.integers(0, len(truth), count)
        stage(
            conn,
            "new_votes",
            {
                "clip_id": ("i8", clips + 1),
                "voter_id": ("i8", rng.choice(trustees, count)),
                "valid": ("?", truth[clips] == (rng.random(count) < NEW_VOTE_ACCURACY)),
            },
        )
        cursor = conn.execute(
            "INSERT INTO contributors_vote (clip_id, voter_id, verdict, created_at)"
            " SELECT DISTINCT ON (n.clip_id, n.voter_id) n.clip_id, n.voter_id,"
            " CASE WHEN n.valid THEN 'valid' ELSE 'invalid' END, now()"
            " FROM new_votes AS n JOIN contributors_clip AS c ON c.id = n.clip_id AND c.contributor_id <> n.voter_id"
            " ON CONFLICT DO NOTHING"
        )
        return cursor.rowcount


# --- before: the ORM implementation, from contributors/services/trust.py at 1206c82 ------------------
# Verbatim but for the stored trustees, which a recompute starts from since.


def orm_snapshot() -> Any:  # a TrustSnapshot; Django's models load only after setup
    from contributors.models import Clip, Contributor, Verdict, Vote
    from contributors.services.trust import _STATUS_CODE, NO_AUTHOR, NO_FIXED_STATUS, TrustSnapshot

    contributors = np.array(
        list(Contributor.objects.order_by("id").values_list("id", "is_founding_trustee", "is_trustee")),
        dtype=np.int64,
    ).reshape(-1, 3)
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
        trustees=contributors[:, 2].astype(bool),
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


# --- measurements ---------------------------------------------------------------------------------


@dataclass
class Row:
    size: Size
    implementation: str  # "trust_recompute_all()", "before (ORM)"
    scenario: str
    snapshot_s: float
    engine_s: float
    write_s: float
    total_s: float
    clips_written: int
    people_written: int
    iterations: int


@dataclass
class Timed:
    row: Row
    snapshot: Any
    summary: Any


def recompute_timed(size: Size, scenario: str, *, orm: bool = False, keep_snapshot: bool = False) -> Timed:
    """One call of the real ``trust_recompute_all()``, end to end (its transaction, the trust lock, the
    TrustRecompute log row), its phases as the service itself times them (``summary.phases``). ``keep_snapshot``:
    also read the state it starts from (outside the timing), to compare with the ORM's or time the engine alone.
    ``orm``: the peer, the ORM implementation's snapshot and write-back put in the service's place."""
    from django.db import transaction

    import contributors.services.trust as service

    if orm:
        return _orm_recompute_timed(size, scenario)
    snapshot = None
    if keep_snapshot:
        with transaction.atomic():
            snapshot = service.trust_snapshot()
    started = time.perf_counter()
    summary = service.trust_recompute_all(trigger="benchmark")
    total = time.perf_counter() - started
    phases = summary.phases
    row = Row(
        size, "trust_recompute_all()", scenario, phases["snapshot"], phases["engine"], phases["write-back"], total,
        summary.clips_changed, summary.contributors_changed, summary.iterations,
    )  # fmt: skip
    _print_row(row, scenario)
    return Timed(row, snapshot, summary)


def _print_row(row: Row, scenario: str) -> None:
    print(
        f"  {row.implementation}, {scenario}: snapshot {row.snapshot_s:.2f} s, engine {row.engine_s:.2f} s "
        f"({row.iterations} evaluations), write-back {row.write_s:.2f} s ({row.clips_written:,} clips, "
        f"{row.people_written:,} people), total {row.total_s:.2f} s",
        flush=True,
    )


def _orm_recompute_timed(size: Size, scenario: str) -> Timed:
    """The peer: the service's own transaction, lock and engine, with the ORM implementation's snapshot and
    write-back in place of its own (put there for the call, timed around them)."""
    import contributors.services.trust as service

    seconds = {"snapshot": 0.0, "write-back": 0.0}
    taken: list[Any] = []

    def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - began

        return wrapper

    def snapshot() -> Any:
        taken.append(orm_snapshot())
        return taken[-1]

    originals = (service.trust_snapshot, service._clips_write_back, service._contributors_write_back)
    service.trust_snapshot = timed("snapshot", snapshot)
    service._clips_write_back = timed("write-back", orm_write_back)
    service._contributors_write_back = lambda *args: None  # the ORM write-back writes both tables
    try:
        started = time.perf_counter()
        summary = service.trust_recompute_all(trigger="benchmark")
        total = time.perf_counter() - started
    finally:
        service.trust_snapshot, service._clips_write_back, service._contributors_write_back = originals
    row = Row(
        size, "before (ORM)", scenario, seconds["snapshot"], summary.phases["engine"], seconds["write-back"], total,
        summary.clips_changed, summary.contributors_changed, summary.iterations,
    )  # fmt: skip
    _print_row(row, scenario)
    return Timed(row, taken[-1], summary)


def engine_alone(snapshot: Any, repeats: int = 3) -> float:
    """The peer: the pure engine on the snapshot's arrays, as the recompute runs it (from the stored
    trustees), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        snapshot.run()
        best = min(best, time.perf_counter() - began)
    return best


def snapshots_equal(a: Any, b: Any) -> bool:
    """The same arrays, votes compared as a multiset (their order differs and does not matter to the engine)."""
    for name in ("contributor_ids", "founders", "trustees", "clip_ids", "clip_author", "clip_fixed"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            return False

    def votes(s: Any) -> np.ndarray:
        return np.sort((s.vote_clip.astype(np.int64) * len(s.contributor_ids) + s.vote_voter) * 2 + s.vote_valid)

    return np.array_equal(votes(a), votes(b))


def summaries_equal(a: Any, b: Any) -> bool:
    names = [f.name for f in fields(a) if f.name not in ("seconds", "phases")]  # timings differ by nature
    return all((Counter(getattr(a, n)) if n == "status_changes" else getattr(a, n)) == getattr(b, n) for n in names)


def measure_size(database_url: str, size: Size, *, baseline: str, new_votes: int) -> tuple[list[Row], float, list[str]]:
    """The rows for one size, the engine-alone peer time, and any equivalence failures. ``baseline``: which
    scenarios the ORM implementation runs too ("both", "steady" or "none")."""
    print(f"{size.label()}: loading ...", flush=True)
    kept, seconds, truth = crowd_load(database_url, size)
    print(f"  loaded {kept:,} votes (after dropping duplicates and own-clip votes) in {seconds:.0f} s", flush=True)
    rows: list[Row] = []
    failures: list[str] = []

    def compare(label: str, before: Timed, after: Timed) -> None:
        if not snapshots_equal(before.snapshot, after.snapshot):
            failures.append(f"{size.label()}, {label}: the snapshot arrays differ from the ORM's")
        if not summaries_equal(before.summary, after.summary):
            failures.append(f"{size.label()}, {label}: summaries differ: {before.summary} != {after.summary}")

    if baseline == "both":
        state_reset(database_url)
        orm_first = recompute_timed(size, "first", orm=True)
        first_rows = state_fingerprint(database_url)
        rows.append(orm_first.row)
    state_reset(database_url)
    first = recompute_timed(size, "first", keep_snapshot=baseline == "both")
    rows.append(first.row)
    if baseline == "both":
        compare("first", orm_first, first)
        if state_fingerprint(database_url) != first_rows:
            failures.append(f"{size.label()}: the rows written differ from the ORM implementation's")
    # A million rows updated leave as many dead versions, which autovacuum clears within minutes; the
    # steady rows measure the state it leaves rather than its race with the benchmark.
    vacuum(database_url, ["contributors_clip", "contributors_contributor"])
    for repeat in range(1, STEADY_REPEATS + 1):  # a shared machine's noise shows in the spread
        steady = recompute_timed(
            size, f"steady: nothing changed ({repeat}/{STEADY_REPEATS})", keep_snapshot=repeat == STEADY_REPEATS
        )
        rows.append(steady.row)
    if baseline in ("both", "steady"):  # the state is the fixed point: the ORM's steady run is comparable
        orm_steady = recompute_timed(size, "steady: nothing changed", orm=True)
        rows.append(orm_steady.row)
        compare("steady", orm_steady, steady)
    for repeat in (1, 2):
        added = votes_add(database_url, truth, new_votes, SEED + 10 + repeat)
        rows.append(recompute_timed(size, f"{added:,} new votes inserted, absorbed ({repeat})").row)
        rows.append(recompute_timed(size, f"steady: after those {added:,} votes ({repeat})").row)
    peer = engine_alone(steady.snapshot)
    print(f"  engine alone (best of 3): {peer:.3f} s", flush=True)
    return rows, peer, failures


# --- report ---------------------------------------------------------------------------------------


def seconds_cell(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN: not a phase of this row


def print_report(results: list[tuple[list[Row], float]], *, postgres_version: str, load_before: str) -> None:
    print()
    print(harness.machine_line(f"PostgreSQL {postgres_version}", f"NumPy {np.__version__}"))
    print(harness.load_before_line(load_before))
    print(
        "first: every status pending and every trust 0 beforehand; steady: the stored state is the fixed point "
        "the previous recompute wrote, then nothing or a few thousand new votes"
    )
    print()
    print("| size | implementation | scenario | snapshot s | engine s | write-back s | total s | clips written "
          "| people written | evaluations | vs engine alone |")  # fmt: skip
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows, peer in results:
        for row in rows:
            print(
                f"| {row.size.label()} | {row.implementation} | {row.scenario} | {seconds_cell(row.snapshot_s)} | "
                f"{seconds_cell(row.engine_s)} | {seconds_cell(row.write_s)} | {row.total_s:.3f} | "
                f"{row.clips_written:,} | {row.people_written:,} | {row.iterations} | {row.total_s / peer:.1f}x |"
            )
        print(f"| {rows[0].size.label()} | peer: engine alone (best of 3) | steady | - | {peer:.3f} | - | {peer:.3f} "
              "| - | - | - | 1.0x |")  # fmt: skip


# --- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"CLIPS:VOTES:PEOPLE,... (default {DEFAULT_SIZES})")
    parser.add_argument(
        "--baseline-max-votes",
        type=int,
        default=0,
        help="run the ORM implementation (before) in both scenarios up to this many votes (default 0: never; "
        "its first scenario takes a minute at 1,000,000)",
    )
    parser.add_argument(
        "--baseline-steady-max-votes",
        type=int,
        default=10_000_000,
        help="and in the steady scenario alone up to this many (default 10,000,000, where it takes about 25 s)",
    )
    parser.add_argument(
        "--new-votes", type=int, default=5000, help="votes added before each 'new votes' recompute (default 5,000)"
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Created and dropped by the run.")
    args = parser.parse_args()
    try:
        args.sizes = [Size(*(int(part) for part in item.split(":"))) for item in args.sizes.split(",") if item]
    except TypeError:
        parser.error("--sizes takes CLIPS:VOTES:PEOPLE triples separated by commas")
    if not args.sizes or any(min(s.clips, s.votes, s.contributors) < 1 for s in args.sizes):
        parser.error("every size needs at least one clip, vote and contributor")
    if args.new_votes < 0:
        parser.error("--new-votes must not be negative")
    return args


def main() -> int:
    args = parse_args()
    results: list[tuple[list[Row], float]] = []
    failures: list[str] = []
    with harness.scratch_site(args.database_url, prefix="bench-trust-db-") as scratch:
        for size in args.sizes:
            if size.votes <= args.baseline_max_votes:
                baseline = "both"
            elif size.votes <= args.baseline_steady_max_votes:
                baseline = "steady"
            else:
                baseline = "none"
            rows, peer, size_failures = measure_size(
                args.database_url, size, baseline=baseline, new_votes=args.new_votes
            )
            results.append((rows, peer))
            failures += size_failures
    print_report(results, postgres_version=scratch.postgres_version, load_before=scratch.load_before)
    for failure in failures:
        print(f"MISMATCH: {failure}")
    if not failures:
        print(
            "\nwhere the ORM implementation ran too, both read identical arrays and left identical rows and summaries"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
