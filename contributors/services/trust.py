"""The trust engine applied to the database: full recompute, the incremental path after a vote, founders.

One definition. The stored statuses, counts, trust and trustees must always equal
``trust_recompute(every vote, founders, trustees_before = the stored trustees)`` (speech/trust.py
explains why a recompute starts from the stored trustees). ``trust_check`` compares the two and
``manage.py trust_recompute --check`` prints the differences; a release is built only from a state that
passes it.

Locking. Every trust write holds the trust lock until its transaction ends: a PostgreSQL advisory lock,
*shared* for the writes that touch only their own clip and its author (a vote whose shortcut is exact, an
upload), *exclusive* for a full recompute, so that votes on different clips run side by side and no write
interleaves with a recompute's read and write-back. On SQLite, IMMEDIATE transactions already serialise
writers.

The incremental path (exact, see speech/trust.py, "Full and incremental"): re-score the voted clip
under the stored trustees; if its status changed, re-score its author's trust; if the author's trustee
status would flip, or the stored state is not a fixed point (``TrustState.exact``), the vote restarts under
the exclusive lock and runs the full recompute in its own transaction. Either way the database, when the
vote commits, is what a full recompute gives, which the property tests check after random sequences of
votes under both presets.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from contributors.conf import trust_params
from contributors.models import Clip, ClipStatus, Contributor, TrustRecompute, TrustState, Verdict, Vote
from core import sql
from core.errors import ServiceError
from core.pgbulk import columns_fetch, ordered_by, positions, rows_update, table_name
from core.sql import prepared_cursor
from speech.trust import (
    NO_AUTHOR,
    NO_FIXED_STATUS,
    TrustResult,
    clip_outcome,
    contributor_is_trustee,
    contributor_trust,
    trust_recompute,
)
from speech.trust import ClipStatus as Code

# Keyed by str: a status read from the database is a plain str, which finds its ClipStatus member's entry.
_STATUS_CODE: dict[str, Code] = {
    ClipStatus.PENDING: Code.PENDING,
    ClipStatus.VALID: Code.VALID,
    ClipStatus.INVALID: Code.INVALID,
    ClipStatus.DISCARDED: Code.DISCARDED,
}
_CODE_STATUS = {int(code): ClipStatus(status) for status, code in _STATUS_CODE.items()}
TRUST_LOCK_KEY = 0x7472757374  # "trust": the advisory lock's key
T = TypeVar("T")


def trust_lock(*, exclusive: bool = True) -> None:
    """Hold the trust lock until the surrounding transaction ends: exclusive for a full recompute, shared
    for a write confined to one clip and its author."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [TRUST_LOCK_KEY])


class TrustHandover(Exception):
    """Raised inside a write holding the shared lock when it turns out to need the full recompute: the
    caller rolls back and runs the write again under the exclusive lock."""


def trust_state() -> TrustState:
    state, _ = TrustState.objects.get_or_create(pk=1)
    return state


# --- the full recompute ---------------------------------------------------------------------------


@dataclass
class TrustSnapshot:
    """The database as the engine's arrays, with the ids to map results back."""

    contributor_ids: np.ndarray
    founders: np.ndarray
    trustees: np.ndarray  # as stored: where the recompute starts
    clip_ids: np.ndarray
    clip_author: np.ndarray
    clip_fixed: np.ndarray
    vote_clip: np.ndarray
    vote_voter: np.ndarray
    vote_valid: np.ndarray
    # The stored trust columns, read with the rows above (by clip: status code, score, votes_counted,
    # votes_valid_counted; by contributor: trust), which the write-back and the check compare with. Only
    # the benchmark's ORM peer, which writes back its own way, builds a snapshot without them.
    clips_stored: tuple[np.ndarray, ...] | None = field(default=None, repr=False)
    contributors_stored: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    def run(self, *, from_founders: bool = False) -> TrustResult:
        return trust_recompute(
            vote_clip=self.vote_clip,
            vote_voter=self.vote_voter,
            vote_valid=self.vote_valid,
            clip_author=self.clip_author,
            founders=self.founders,
            clip_fixed=self.clip_fixed,
            trustees_before=None if from_founders else self.trustees,
            params=trust_params(),
        )


def trust_snapshot() -> TrustSnapshot:
    """Load contributors, clips and votes in bulk (one statement a table) as index arrays, and the stored
    trust columns that a write-back compares with.

    On PostgreSQL each table arrives packed into binary values that NumPy reads in place (ten million
    votes in about a second, where model rows took 16 s and 3 GB); the arrays equal what the ORM gave,
    except that the votes come in table order rather than by id, which the engine's counts do not depend
    on. The stored columns are read here rather than again by the write-back: under the exclusive trust
    lock that every writer of them takes, they cannot change in between, and the clip table, the widest,
    is scanned once instead of twice."""
    contributor_ids, founders, trustees, trust = columns_fetch(
        Contributor, ("id", "i8"), ("is_founding_trustee", "?"), ("is_trustee", "?"), ("trust", "f8")
    )
    contributor_ids, founders, trustees, trust = ordered_by(contributor_ids, founders, trustees, trust)
    clip_ids, clip_contributor, clip_status_fixed, clip_status, clip_score, clip_counted, clip_valid = columns_fetch(
        Clip,
        ("id", "i8"),
        ("contributor_id", "i8"),
        ("status_fixed", "?"),
        (_status_code_sql("status"), "i8"),
        ("score", "f8"),
        ("votes_counted", "i8"),
        ("votes_valid_counted", "i8"),
    )
    clip_ids, clip_contributor, clip_status_fixed, clip_status, clip_score, clip_counted, clip_valid = ordered_by(
        clip_ids, clip_contributor, clip_status_fixed, clip_status, clip_score, clip_counted, clip_valid
    )
    vote_clip_ids, vote_voter_ids, vote_valid = _votes_fetch(contributor_ids, clip_ids)
    # A clip with a fixed (imported) status has no author in the engine's eyes: a curated corpus's
    # speakers did not earn trust on the platform, and must not become trustees through it.
    authors = positions(contributor_ids, clip_contributor)
    return TrustSnapshot(
        contributor_ids=contributor_ids,
        founders=founders,
        trustees=trustees,
        clip_ids=clip_ids,
        clip_author=np.where(clip_status_fixed, NO_AUTHOR, authors).astype(np.int64),
        clip_fixed=np.where(clip_status_fixed, clip_status, NO_FIXED_STATUS).astype(np.int64),
        vote_clip=positions(clip_ids, vote_clip_ids, overwrite=True),
        vote_voter=positions(contributor_ids, vote_voter_ids, overwrite=True),
        vote_valid=vote_valid,
        clips_stored=(clip_status, clip_score, clip_counted, clip_valid),
        contributors_stored=(trust,),
    )


def _votes_fetch(contributor_ids: np.ndarray, clip_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every vote's clip id, voter id and whether it says valid, in table order.

    On PostgreSQL each vote travels as one bigint, ``clip_id · 2^(b+1) + voter_id · 2 + invalid`` with ``b``
    the bit length of the largest contributor id read: one value to pack per row instead of three costs
    the server a third less. A guard, evaluated once in the statement's own snapshot, reads nothing unless
    every contributor id then fits in ``b`` bits (a foreign key holds within a snapshot, so then every
    voter's does) and no clip id can overflow the bigint; in that case, or where the ids are too large for
    one bigint, the votes are read column by column instead."""
    valid_sql = f"verdict = '{Verdict.VALID.value}'"
    if connection.vendor == "postgresql" and len(contributor_ids) and len(clip_ids):
        bits = int(contributor_ids[-1]).bit_length()
        clip_limit = 2 ** (62 - bits - 1)  # then every key is below 2^62
        if contributor_ids[0] >= 0 and clip_ids[0] >= 0 and int(clip_ids[-1]) < clip_limit:
            contributors, clips = table_name(Contributor), table_name(Clip)
            guard = (
                f"(SELECT min(id) >= 0 AND max(id) < {2**bits} FROM {contributors})"  # noqa: S608 (our SQL)
                f" AND (SELECT min(id) >= 0 AND max(id) < {clip_limit} FROM {clips})"
            )
            key_sql = f"clip_id * {2 ** (bits + 1)} + voter_id * 2 + CAST(NOT ({valid_sql}) AS integer)"
            (keys,) = columns_fetch(Vote, (key_sql, "i8"), guard=guard)
            if len(keys):
                valid = (keys & 1) == 0
                clip_ids = keys >> (bits + 1)
                keys >>= 1
                keys &= 2**bits - 1  # now the voter ids
                return clip_ids, keys, valid
    vote_clips, voters, says_valid = columns_fetch(Vote, ("clip_id", "i8"), ("voter_id", "i8"), (valid_sql, "?"))
    return vote_clips, voters, says_valid


@dataclass
class TrustRecomputeSummary:
    clips_changed: int = 0
    status_changes: Counter = field(default_factory=Counter)  # (old, new) -> clips
    contributors_changed: int = 0
    trustees_gained: int = 0
    trustees_lost: int = 0
    trustees: int = 0
    iterations: int = 0
    cycle_resolved: bool = False
    capped: bool = False
    exact: bool = True
    seconds: float = 0.0
    # Where the seconds went: reading the votes ("snapshot"), the pure engine ("engine"), writing back what changed
    # ("write-back"); benchmarks/trust_db.py reports them.
    phases: dict[str, float] = field(default_factory=dict)


def trust_recompute_all(*, trigger: str = "command", from_founders: bool = False) -> TrustRecomputeSummary:
    """Recompute every status and trust from all the votes and write back only what changed.

    ``from_founders`` re-grounds the trustee set from the founders alone instead of starting from the
    stored trustees (an operator's clean slate; speech/trust.py explains the difference)."""
    with transaction.atomic():
        trust_lock()
        return _recompute_logged(trigger=trigger, from_founders=from_founders)


def _recompute_logged(*, trigger: str, from_founders: bool = False) -> TrustRecomputeSummary:
    """A full recompute under the held lock, kept in the TrustRecompute log for operators."""
    started = time.perf_counter()
    summary = _recompute_locked(from_founders=from_founders)
    summary.seconds = time.perf_counter() - started
    TrustRecompute.objects.create(
        seconds=summary.seconds,
        iterations=summary.iterations,
        cycle_resolved=summary.cycle_resolved,
        capped=summary.capped,
        clips_changed=summary.clips_changed,
        contributors_changed=summary.contributors_changed,
        trustees=summary.trustees,
        trigger=trigger,
    )
    return summary


def _recompute_locked(*, from_founders: bool = False) -> TrustRecomputeSummary:
    began = time.perf_counter()
    snapshot = trust_snapshot()
    read = time.perf_counter()
    result = snapshot.run(from_founders=from_founders)
    computed = time.perf_counter()
    summary = TrustRecomputeSummary(
        iterations=result.iterations,
        cycle_resolved=result.cycle_resolved,
        capped=result.capped,
        exact=result.exact,
        trustees=int(result.trustees.sum()),
    )
    _clips_write_back(snapshot, result, summary)
    _contributors_write_back(snapshot, result, summary)
    summary.phases = {"snapshot": read - began, "engine": computed - read, "write-back": time.perf_counter() - computed}
    TrustState.objects.update_or_create(pk=1, defaults={"exact": result.exact, "recomputed_at": timezone.now()})
    return summary


# --- the check --------------------------------------------------------------------------------------


@dataclass
class TrustDifference:
    """One row whose stored values differ from the full recompute's."""

    kind: str  # "clip" or "contributor"
    pk: int
    stored: dict[str, Any]
    recomputed: dict[str, Any]

    def __str__(self) -> str:
        fields = [name for name in self.stored if self.stored[name] != self.recomputed[name]]
        changes = ", ".join(f"{name} {self.stored[name]!r} -> {self.recomputed[name]!r}" for name in fields)
        return f"{self.kind} {self.pk}: {changes}"


@dataclass
class TrustCheck:
    differences: list[TrustDifference]  # the first ``limit`` of them
    total: int  # rows that differ, listed or not
    exact: bool  # the recompute reached a fixed point (else the cycle rule or the cap decided)

    @property
    def passed(self) -> bool:
        return self.total == 0


def trust_check(*, limit: int = 1000) -> TrustCheck:
    """Compare the stored state with a full recompute (from the stored trustees), changing nothing.

    Holds the exclusive lock while it reads, so it sees no write half done; lists at most ``limit``
    differences."""
    with transaction.atomic():
        trust_lock()
        return _check_locked(limit=limit)


@contextmanager
def trust_settled(*, limit: int = 20) -> Iterator[None]:
    """Hold the exclusive trust lock for the block, after checking that the stored state equals a full
    recompute: what the block reads (a release's clips) is a state the check passed and no vote changes
    until it ends. Refused with ``trust_inconsistent`` (409), listing the first differences, otherwise."""
    with transaction.atomic():
        trust_lock()
        check = _check_locked(limit=limit)
        if not check.passed:
            listed = "; ".join(str(difference) for difference in check.differences)
            raise ServiceError(
                "trust_inconsistent",
                f"The stored trust state differs from a full recompute in {check.total} rows ({listed}); run "
                "manage.py trust_recompute and try again.",
                status_code=409,
            )
        yield


def _check_locked(*, limit: int = 1000) -> TrustCheck:
    snapshot = trust_snapshot()
    result = snapshot.run()
    differences: list[TrustDifference] = []
    clips = _clip_changes(snapshot, result)
    contributors = _contributor_changes(snapshot, result)
    names = ("status", "score", "votes_counted", "votes_valid_counted")
    for i in np.flatnonzero(clips.changed)[:limit].tolist():
        stored, fresh = ([row[i] for row in values] for values in (clips.stored, clips.new))
        stored[0], fresh[0] = _CODE_STATUS[int(stored[0])].value, _CODE_STATUS[int(fresh[0])].value
        differences.append(
            TrustDifference(
                "clip",
                int(clips.ids[i]),
                dict(zip(names, [stored[0], float(stored[1]), int(stored[2]), int(stored[3])], strict=True)),
                dict(zip(names, [fresh[0], float(fresh[1]), int(fresh[2]), int(fresh[3])], strict=True)),
            )
        )
    for i in np.flatnonzero(contributors.changed)[: max(limit - len(differences), 0)].tolist():
        (trust, trustee), (new_trust, new_trustee) = contributors.stored, contributors.new
        differences.append(
            TrustDifference(
                "contributor",
                int(contributors.ids[i]),
                {"trust": float(trust[i]), "is_trustee": bool(trustee[i])},
                {"trust": float(new_trust[i]), "is_trustee": bool(new_trustee[i])},
            )
        )
    total = int(clips.changed.sum()) + int(contributors.changed.sum())
    return TrustCheck(differences=differences, total=total, exact=result.exact)


@dataclass
class _Changes:
    """Rows (``ids``) whose stored columns differ from the recompute's, column by column in the same order."""

    ids: np.ndarray
    stored: tuple[np.ndarray, ...]
    new: tuple[np.ndarray, ...]
    changed: np.ndarray


def _clip_changes(snapshot: TrustSnapshot, result: TrustResult) -> _Changes:
    """(status code, score, votes_counted, votes_valid_counted) as stored and as recomputed; the stored
    values are the snapshot's, read in the same statement as the clips (result order)."""
    assert snapshot.clips_stored is not None, "a trust_snapshot() carries the stored columns"
    stored = snapshot.clips_stored
    new = (result.clip_status.astype(np.int64), result.clip_score, result.clip_counted, result.clip_valid_counted)
    changed = np.logical_or.reduce([old != fresh for old, fresh in zip(stored, new, strict=True)])
    return _Changes(snapshot.clip_ids, stored, new, changed)


def _contributor_changes(snapshot: TrustSnapshot, result: TrustResult) -> _Changes:
    """(trust, is_trustee) as stored and as recomputed."""
    assert snapshot.contributors_stored is not None, "a trust_snapshot() carries the stored columns"
    stored = (snapshot.contributors_stored[0], snapshot.trustees)
    new = (result.contributor_trust, result.trustees)
    changed = (stored[0] != new[0]) | (stored[1] != new[1])
    return _Changes(snapshot.contributor_ids, stored, new, changed)


def _clips_write_back(snapshot: TrustSnapshot, result: TrustResult, summary: TrustRecomputeSummary) -> None:
    """Write the clips whose status, score or counts differ from the result; tally the status changes.

    Compared in NumPy and written in one statement: row by row through the ORM, this took longer than
    everything else in a full recompute together."""
    clips = _clip_changes(snapshot, result)
    changed, status, new_status = clips.changed, clips.stored[0], clips.new[0]
    moved = changed & (status != new_status)
    pairs, counts = np.unique(status[moved] * 256 + new_status[moved], return_counts=True)
    for pair, count in zip(pairs.tolist(), counts.tolist(), strict=True):
        old, new = divmod(pair, 256)
        summary.status_changes[(_CODE_STATUS[old].value, _CODE_STATUS[new])] += count
    rows_update(
        Clip,
        clips.ids[changed],
        {
            name: (dtype, values[changed], to_stored)
            for name, dtype, values, to_stored in zip(
                ("status", "score", "votes_counted", "votes_valid_counted"),
                ("i8", "f8", "i8", "i8"),
                clips.new,
                (_status_text_sql, None, None, None),
                strict=True,
            )
        },
    )
    summary.clips_changed = int(changed.sum())


def _contributors_write_back(snapshot: TrustSnapshot, result: TrustResult, summary: TrustRecomputeSummary) -> None:
    """Write the contributors whose trust or trustee status differs from the result."""
    contributors = _contributor_changes(snapshot, result)
    changed, (_, trustee), (new_trust, new_trustee) = contributors.changed, contributors.stored, contributors.new
    summary.trustees_gained += int((new_trustee & ~trustee).sum())
    summary.trustees_lost += int((trustee & ~new_trustee).sum())
    rows_update(
        Contributor,
        contributors.ids[changed],
        {"trust": ("f8", new_trust[changed], None), "is_trustee": ("?", new_trustee[changed], None)},
    )
    summary.contributors_changed = int(changed.sum())


# --- status codes in SQL (core.pgbulk moves whole columns) ----------------------------------------


def _status_code_sql(column: str) -> str:
    """SQL for a status column as its engine code (NULL for an unknown status, which the read refuses)."""
    cases = " ".join(f"WHEN '{ClipStatus(status).value}' THEN {int(code)}" for status, code in _STATUS_CODE.items())
    return f"CASE {column} {cases} END"


def _status_text_sql(column: str) -> str:
    """SQL for an engine code as the status it stands for."""
    cases = " ".join(f"WHEN {code} THEN '{status.value}'" for code, status in _CODE_STATUS.items())
    return f"CASE {column} {cases} END"


# --- the incremental path -------------------------------------------------------------------------


def trust_write_lock(*, exclusive: bool) -> None:
    """Take the trust lock for a write; under the shared lock, hand over at once when the stored state is
    not a fixed point (then no shortcut is exact and the write must run the full recompute)."""
    if exclusive:
        trust_lock(exclusive=True)
    elif not _shared_lock_and_exact():
        raise TrustHandover


def _shared_lock_and_exact() -> bool:
    """The shared trust lock and the stored state's ``exact`` flag, in one round trip (every vote takes it).

    On PostgreSQL ``exact`` is read after the lock is granted, in a statement of its own
    (contributors/sql_functions.py): read in the locking statement it was as old as that statement's snapshot,
    taken before the wait, and missed what a recompute holding the exclusive lock had just committed."""
    if connection.vendor == "postgresql":
        from contributors.sql_functions import lock_exact_function

        statement = f"SELECT {lock_exact_function().name}(%s::bigint)"
        params: list[int] = [TRUST_LOCK_KEY]
    else:
        # No row yet means never recomputed: not exact.
        statement, params = f"SELECT (SELECT exact FROM {TrustState._meta.db_table} WHERE id = 1)", []  # noqa: S608
    with prepared_cursor() as cursor:
        cursor.execute(statement, params)
        return bool(cursor.fetchone()[0])


def trust_write(work: Callable[[bool], T], *, locks_shared: bool = False) -> T:
    """Run ``work(exclusive)`` in a transaction holding the trust lock: shared first and, if the work hands
    over (:class:`TrustHandover`), again from the start under the exclusive lock, where it cannot. A refusal
    the work raises (a ServiceError) rolls everything back as usual.

    ``locks_shared``: ``work(False)`` takes the shared lock itself, and checks ``exact`` after it as
    :func:`trust_write_lock` does (the vote's one-call path, whose one statement starts with it)."""
    try:
        with transaction.atomic():
            if not locks_shared:
                trust_write_lock(exclusive=False)
            return work(False)
    except TrustHandover:
        pass
    with transaction.atomic():
        trust_write_lock(exclusive=True)
        outcome = work(True)
        if not trust_state().exact:  # a database never recomputed, or a cycle last time: settle it now
            _recompute_logged(trigger="settle")
        return outcome


def trust_write_recomputed(work: Callable[[], T], *, trigger: str) -> T:
    """Run ``work()`` and then the full recompute in one transaction under the exclusive trust lock: for the rare
    changes to what the engine reads that no shortcut covers (a clip's status fixed by its author's withdrawal)."""
    with transaction.atomic():
        trust_lock(exclusive=True)
        outcome = work()
        _recompute_logged(trigger=trigger)
        return outcome


def trust_after_vote(*, clip: Clip, exclusive: bool, counted: tuple[int, int] | None = None) -> bool:
    """Bring statuses and trust up to date after a vote on ``clip``; call inside the vote's transaction,
    after ``trust_write_lock``. Under the shared lock this raises :class:`TrustHandover` when the vote would
    flip a trustee status; under the exclusive lock it then runs the full recompute and returns True (rows
    read before it may be stale). ``counted``: the clip's counted votes (valid, invalid) with this one, when
    the vote's own statement read them (:func:`counted_votes_sql`); otherwise they are read here."""
    if not _clip_rescore(clip, counted) or clip.status_fixed:
        return False
    return _author_retrust(_contributor_locked(clip.contributor_id), exclusive=exclusive, trigger="vote")


def trust_after_submission(*, contributor: Contributor, exclusive: bool) -> None:
    """A new clip (pending, no votes) counts at once in its author's clips: under the ``proposal`` preset it
    dilutes their trust until validated, so a trustee may lose the status by recording; under ``wilson``
    only decided clips count and nothing changes. Call inside the upload's transaction, after
    ``trust_write_lock``."""
    author = Contributor.objects.select_for_update().get(pk=contributor.pk)
    _author_retrust(author, exclusive=exclusive, trigger="submission")


def _author_retrust(author: Contributor, *, exclusive: bool, trigger: str) -> bool:
    """Re-score the author's trust; True when that flipped their status and the full recompute ran.

    A flip of an author who has cast no vote needs no recompute (so no exclusive lock): their votes count
    nowhere, trustee or not, so no other clip's counts, hence no one else's trust, move with their status.
    From a fixed point the stored state with their new status and trust is again one, and it is what the
    full recompute gives (its descent drops them, or its ascent admits them, then nothing moves). That is
    every first admission, since only trustees vote."""
    trust, trustee = _contributor_trust_now(author)
    if trustee != author.is_trustee and _has_voted(author):
        if not exclusive:
            raise TrustHandover
        _recompute_logged(trigger=f"{trigger}_flip")
        return True
    if trust != author.trust or trustee != author.is_trustee:
        author.trust, author.is_trustee = trust, trustee
        with prepared_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table_name(Contributor)} SET trust = %s, is_trustee = %s WHERE id = %s",  # noqa: S608
                [trust, trustee, author.pk],
            )
    return False


def _has_voted(contributor: Contributor) -> bool:
    with prepared_cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table_name(Vote)} WHERE voter_id = %s LIMIT 1", [contributor.pk])  # noqa: S608
        return cursor.fetchone() is not None


def _contributor_locked(pk: int) -> Contributor:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {sql.columns(Contributor, 'c')} FROM {table_name(Contributor)} c WHERE c.id = %s{lock}",  # noqa: S608
            [pk],
        )
        return sql.from_row(Contributor, cursor.fetchone())


def counted_votes_sql() -> tuple[str, list[str]]:
    """The one definition of a clip's counted votes in SQL: (valid, invalid) among the votes of contributors
    who are trustees now. The statement and its leading parameters; the clip's id is the last."""
    return (
        f"SELECT COUNT(CASE WHEN v.verdict = %s THEN 1 END) AS valid, COUNT(CASE WHEN v.verdict = %s THEN 1 END)"  # noqa: S608
        f" AS invalid FROM {table_name(Vote)} v JOIN {table_name(Contributor)} t ON t.id = v.voter_id"
        " WHERE v.clip_id = %s AND t.is_trustee",
        [Verdict.VALID.value, Verdict.INVALID.value],
    )


def _clip_rescore(clip: Clip, counted: tuple[int, int] | None = None) -> bool:
    """Recount the trustees' votes on one clip (unless ``counted`` gives them); returns whether its status
    changed."""
    with prepared_cursor() as cursor:
        if counted is None:
            statement, params = counted_votes_sql()
            cursor.execute(statement, [*params, clip.pk])
            counted = cursor.fetchone()
        valid, invalid = counted
        fixed = int(_STATUS_CODE[clip.status]) if clip.status_fixed else NO_FIXED_STATUS
        outcome = clip_outcome(valid, invalid, trust_params(), fixed_status=fixed)
        status = _CODE_STATUS[int(outcome.status)]
        changed = status != clip.status
        clip.status, clip.score = status, outcome.score
        clip.votes_counted, clip.votes_valid_counted = outcome.counted, valid
        clip.updated_at = timezone.now()  # auto_now, as save() would
        cursor.execute(
            f"UPDATE {table_name(Clip)} SET status = %s, score = %s, votes_counted = %s, votes_valid_counted = %s,"  # noqa: S608
            " updated_at = %s WHERE id = %s",
            [
                clip.status.value if isinstance(clip.status, ClipStatus) else clip.status,
                clip.score,
                clip.votes_counted,
                clip.votes_valid_counted,
                connection.ops.adapt_datetimefield_value(clip.updated_at),
                clip.pk,
            ],
        )
    return changed


def _contributor_trust_now(contributor: Contributor) -> tuple[float, bool]:
    """One contributor's trust from their clips' stored statuses, and whether it makes them a trustee."""
    counted = ", ".join(["COUNT(CASE WHEN status = %s THEN 1 END)"] * 3 + ["COUNT(*)"])
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {counted} FROM {table_name(Clip)} WHERE contributor_id = %s AND NOT status_fixed",  # noqa: S608
            [ClipStatus.VALID.value, ClipStatus.INVALID.value, ClipStatus.DISCARDED.value, contributor.pk],
        )
        valid, invalid, discarded, total = cursor.fetchone()
    params = trust_params()
    founding = contributor.is_founding_trustee
    trust = contributor_trust(valid, invalid, discarded, total, founding, params)
    return trust, contributor_is_trustee(trust, founding, params)


# --- founders -------------------------------------------------------------------------------------


def founders_set(*, usernames: list[str], founding: bool, allowance: int | None = None) -> list[Contributor]:
    """Name or remove founding trustees (optionally setting their extra vote allowance), then recompute:
    their votes start or stop counting everywhere. A removed founder stays a trustee only if their own
    clips earn it; whoever leaned on their votes alone loses the status in the same recompute."""
    if allowance is not None and allowance < 0:
        raise ServiceError("allowance_invalid", "A vote allowance cannot be negative.")
    with transaction.atomic():
        trust_lock()
        contributors = list(Contributor.objects.select_related("user").filter(user__username__in=usernames))
        missing = sorted(set(usernames) - {c.user.username for c in contributors if c.user is not None})
        if missing:
            raise ServiceError("contributor_unknown", f"No contributor with the username: {', '.join(missing)}.")
        for contributor in contributors:
            contributor.is_founding_trustee = founding
            fields = ["is_founding_trustee"]
            if not founding:
                # The recompute starts from the stored trustees: a removed founder must earn the status anew.
                contributor.is_trustee = False
                fields.append("is_trustee")
            if allowance is not None:
                contributor.vote_allowance = allowance
                fields.append("vote_allowance")
            contributor.save(update_fields=fields)
        _recompute_logged(trigger="founders")
    for contributor in contributors:
        contributor.refresh_from_db()
    return contributors
