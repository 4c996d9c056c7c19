"""PL/pgSQL functions for the validation hot path, generated from the Python statements and installed by ``migrate``.

Why functions. A vote took eleven round trips to PostgreSQL, and on two cores each one costs the gunicorn worker
its cursor and both processes a context switch (docs/benchmarks.md, "Validation after session 7"). The vote's data
work up to its next assignment's pick (the trust lock, the voter's row and quota counts, the clip and its
assignment, the insert, the assignment's close, the clip's counted votes, the queue's walk) is one call of
:func:`vote_function`.

Why they also close a race. Under READ COMMITTED a statement's snapshot is taken when it starts: a statement that
waits for a row lock (the voter's) or the trust lock, and reads counts or ``exact`` in the same statement, reads
them as they were *before* the transaction it waited for committed. One vote past the quota, or a shortcut taken
on a state a recompute had just marked inexact, was the result. In a (volatile) PL/pgSQL function every statement
takes a new snapshot, so the reads that follow a lock inside one see what the lock holder committed.
:func:`lock_quota_function` and :func:`lock_exact_function` do that for the Python path too, in one round trip.

One definition. No rule of the engine lives here: which clip a vote decides, trust, who is a trustee and the quota
are computed in Python (speech/trust.py) from what the function returns, exactly as on SQLite, where the same
services run their statements one by one. The function only gates its insert on the conditions the Python checks
then apply to the rows it returns (the caller falls back to the Python statements, or refuses, whenever they
disagree), and its SQL is the Python statements' text (``counted_votes_sql``, the queue's), with their ``%s``
placeholders replaced by the function's parameters. tests/contributors/test_vote_function.py runs the same votes
through both paths and compares the rows they leave.

Installed by ``post_migrate`` (``migrate`` runs in every deployment, test database and benchmark) under names that
carry a hash of their text, so code never calls a body other than the one it generated.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from django.db import connections

from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipStatus,
    Contributor,
    TrustState,
    ValidationAssignment,
    Vote,
)


def _substituted(statement: str, values: list[str]) -> str:
    """``statement`` with its ``%s`` placeholders replaced, in order, by PL/pgSQL expressions."""
    parts = statement.split("%s")
    if len(parts) != len(values) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders for {len(values)} values in {statement!r}")
    return "".join(part + value for part, value in zip(parts, values, strict=False)) + parts[-1]


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class SqlFunction:
    name: str  # with the hash of its definition
    definition: str  # CREATE OR REPLACE FUNCTION ...


def _function(stem: str, signature: str, body: str) -> SqlFunction:
    """A function named ``stem`` plus a hash of its text; ``{name}`` in ``signature`` is replaced by the name."""
    digest = hashlib.sha256((signature + body).encode()).hexdigest()[:10]
    name = f"{stem}_{digest}"
    return SqlFunction(
        name=name,
        definition=f"CREATE OR REPLACE FUNCTION {signature.format(name=name)} LANGUAGE plpgsql AS $fn$\n{body}\n$fn$",
    )


def _tables() -> dict[type, str]:
    return {model: model._meta.db_table for model in (Clip, Contributor, TrustState, ValidationAssignment, Vote)}


@functools.cache
def lock_quota_function() -> SqlFunction:
    """The contributor's row, locked, then (new statements, new snapshots) their clips and votes: the quota's
    counts with every vote committed while the lock was awaited."""
    t = _tables()
    return _function(
        "contributors_lock_quota",
        f"{{name}}(p_id bigint, OUT o_row {t[Contributor]}, OUT o_clips bigint, OUT o_votes bigint)",
        f"""BEGIN
    SELECT * INTO o_row FROM {t[Contributor]} WHERE id = p_id FOR UPDATE;
    SELECT count(*) INTO o_clips FROM {t[Clip]} WHERE contributor_id = p_id;
    SELECT count(*) INTO o_votes FROM {t[Vote]} WHERE voter_id = p_id;
END""",  # noqa: S608 (table names only)
    )


@functools.cache
def lock_exact_function() -> SqlFunction:
    """The shared trust lock, then (a new snapshot) the stored state's ``exact``: false when a recompute that held
    the exclusive lock left it inexact, or when it was never recomputed (no row)."""
    t = _tables()
    return _function(
        "contributors_lock_exact",
        "{name}(p_key bigint) RETURNS boolean",
        f"""DECLARE
    o_exact boolean;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_key);
    SELECT s.exact INTO o_exact FROM {t[TrustState]} s WHERE s.id = 1;
    RETURN coalesce(o_exact, false);
END""",  # noqa: S608 (table names only)
    )


@functools.cache
def vote_function() -> SqlFunction:
    """The vote's data work in one call (see the module docstring). Returns, in order: ``o_exact`` (false: nothing
    else was done, the caller hands over to the exclusive lock); the voter's row (locked) and quota counts; the
    clip and the voter's open assignment on it, both locked (nulls when there is none); ``o_vote_id``, null unless
    the vote was inserted (and its assignment closed), which it is only when the voter is a trustee, the clip not
    their own and pending, the assignment unexpired at ``p_now`` and a vote is left; the clip's counted votes with
    this one; and the queue's candidates for the next assignment (empty when none is left to give or none was
    found, and then the caller's own walk decides)."""
    from contributors.selectors import PICK_AMONG, queue_statements
    from contributors.services.trust import counted_votes_sql

    t = _tables()
    queue = queue_statements()
    eligible = ["p_cap", "p_voter", "p_voter", "p_voter", "p_voter", "p_now", "p_voter"]
    from_key = _substituted(queue.from_key, [*eligible, *eligible, "p_start"])
    before_key = _substituted(
        queue.before_key, [*eligible, *eligible, "p_start", f"{PICK_AMONG} - cardinality(o_candidates)"]
    )
    counted, count_params = counted_votes_sql()
    counted = _substituted(counted, [*(_quote_literal(p) for p in count_params), "p_clip"])
    open_, voted = _quote_literal(AssignmentOutcome.OPEN.value), _quote_literal(AssignmentOutcome.VOTED.value)
    pending = _quote_literal(ClipStatus.PENDING.value)
    # speech.trust.vote_quota's arithmetic, only to gate the insert: the caller computes the quota itself.
    earned = "floor(p_quota_per_clip * o_clips + 1e-9::double precision) + greatest(o_voter.vote_allowance, 0)"
    signature = (
        "{name}(p_voter bigint, p_clip bigint, p_verdict text, p_reason text, p_now timestamptz, p_key bigint,"
        " p_quota_per_clip double precision, p_cap integer, p_start double precision,"
        f" OUT o_exact boolean, OUT o_voter {t[Contributor]}, OUT o_clips bigint, OUT o_votes bigint,"
        f" OUT o_clip {t[Clip]}, OUT o_assignment {t[ValidationAssignment]}, OUT o_vote_id bigint,"
        " OUT o_valid bigint, OUT o_invalid bigint, OUT o_candidates bigint[])"
    )
    # Table names, constants and the Python statements' text only: every value is a parameter.
    body = f"""DECLARE
    p_assignment_id bigint;
BEGIN
    o_candidates := '{{}}';
    PERFORM pg_advisory_xact_lock_shared(p_key);
    SELECT s.exact INTO o_exact FROM {t[TrustState]} s WHERE s.id = 1;
    o_exact := coalesce(o_exact, false);
    IF NOT o_exact THEN
        RETURN;
    END IF;
    SELECT * INTO o_voter FROM {t[Contributor]} WHERE id = p_voter FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) INTO o_clips FROM {t[Clip]} WHERE contributor_id = p_voter;
    SELECT count(*) INTO o_votes FROM {t[Vote]} WHERE voter_id = p_voter;
    SELECT a.id INTO p_assignment_id FROM {t[Clip]} c JOIN {t[ValidationAssignment]} a ON a.clip_id = c.id
        WHERE c.id = p_clip AND a.trustee_id = p_voter AND a.outcome = {open_} FOR UPDATE OF c, a;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO o_clip FROM {t[Clip]} WHERE id = p_clip;
    SELECT * INTO o_assignment FROM {t[ValidationAssignment]} WHERE id = p_assignment_id;
    IF NOT o_voter.is_trustee OR o_clip.contributor_id = p_voter OR o_clip.status <> {pending}
            OR o_assignment.expires_at <= p_now OR {earned} - o_votes <= 0 THEN
        RETURN;
    END IF;
    INSERT INTO {t[Vote]} (clip_id, voter_id, verdict, reason, created_at)
        VALUES (p_clip, p_voter, p_verdict, p_reason, p_now) RETURNING id INTO o_vote_id;
    UPDATE {t[ValidationAssignment]} SET outcome = {voted}, closed_at = p_now WHERE id = p_assignment_id;
    SELECT counted.valid, counted.invalid INTO o_valid, o_invalid FROM ({counted}) AS counted;
    IF {earned} - o_votes - 1 > 0 THEN
        o_candidates := ARRAY(SELECT q.id FROM ({from_key}) AS q);
        IF cardinality(o_candidates) < {PICK_AMONG} THEN
            o_candidates := o_candidates || ARRAY(SELECT q.id FROM ({before_key}) AS q);
        END IF;
    END IF;
END"""  # noqa: S608
    return _function("contributors_vote", signature, body)


def functions() -> list[SqlFunction]:
    return [lock_quota_function(), lock_exact_function(), vote_function()]


def sql_functions_install(using: str = "default", **kwargs) -> None:
    """Create the functions (``post_migrate``; PostgreSQL only). Their names carry their text's hash, so creating
    them again is a no-op, and a deployment's new code gets its own while the old code still runs on the old."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    if not set(_tables().values()) <= set(connection.introspection.table_names()):
        return  # migrated back below the tables the functions read (``migrate contributors zero``)
    with connection.cursor() as cursor:
        for function in functions():
            cursor.execute("SELECT 1 FROM pg_proc WHERE proname = %s", [function.name])
            if cursor.fetchone() is None:
                cursor.execute(function.definition)
