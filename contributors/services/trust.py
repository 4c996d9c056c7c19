"""The trust engine applied to the database: full recompute, the incremental path after a vote, founders.

Every trust write happens under one lock (a PostgreSQL advisory lock; SQLite's IMMEDIATE transactions
already serialise writers), so a vote's incremental update and a full recompute never interleave.

The incremental path re-scores the voted clip; if its status changes it recomputes the author's trust; if
the author's trustee status flips, the votes they cast start or stop counting on many clips, and the
fixed point from the founders may move as a whole, so that case runs the full recompute (still a fraction
of a second for a community's worth of votes). Either way the database ends where a full recompute from
scratch would put it, which the property tests check after random sequences of votes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Q

from contributors.conf import trust_params
from contributors.models import Clip, ClipStatus, Contributor, TrustRecompute, Verdict, Vote
from contributors.trust import (
    NO_AUTHOR,
    NO_FIXED_STATUS,
    TrustResult,
    clip_outcome,
    contributor_is_trustee,
    contributor_trust,
    trust_recompute,
)
from contributors.trust import ClipStatus as Code
from core.errors import ServiceError

_STATUS_CODE = {
    ClipStatus.PENDING: Code.PENDING,
    ClipStatus.VALID: Code.VALID,
    ClipStatus.INVALID: Code.INVALID,
    ClipStatus.DISCARDED: Code.DISCARDED,
}
_CODE_STATUS = {int(code): status for status, code in _STATUS_CODE.items()}
_CODE_STATUS_TEXT = np.array([_CODE_STATUS[code].value for code in range(len(_CODE_STATUS))], dtype=object)
_LOCK_KEY = 0x7472757374  # "trust"


def trust_lock() -> None:
    """Serialise trust writes until the surrounding transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


# --- the full recompute ---------------------------------------------------------------------------


@dataclass
class TrustSnapshot:
    """The database as the engine's arrays, with the ids to map results back."""

    contributor_ids: np.ndarray
    founders: np.ndarray
    clip_ids: np.ndarray
    clip_author: np.ndarray
    clip_fixed: np.ndarray
    vote_clip: np.ndarray
    vote_voter: np.ndarray
    vote_valid: np.ndarray

    def run(self) -> TrustResult:
        return trust_recompute(
            vote_clip=self.vote_clip,
            vote_voter=self.vote_voter,
            vote_valid=self.vote_valid,
            clip_author=self.clip_author,
            founders=self.founders,
            clip_fixed=self.clip_fixed,
            params=trust_params(),
        )


def trust_snapshot() -> TrustSnapshot:
    """Load contributors, clips and votes in bulk (three queries) as index arrays.

    On PostgreSQL each query streams as binary COPY straight into NumPy (ten million votes in a few
    seconds, where model rows took minutes); the arrays equal what the ORM would give, except that the
    votes come in table order rather than by id, which the engine's counts do not depend on."""
    contributor_ids, founders = _columns_fetch(
        f"SELECT id, is_founding_trustee FROM {_table(Contributor)}",  # noqa: S608 (our own table names)
        ("i8", "?"),
    )
    contributor_ids, founders = _ordered_by(contributor_ids, founders)
    clip_ids, clip_contributor, clip_status_fixed, clip_status = _columns_fetch(
        f"SELECT id, contributor_id, status_fixed, {_status_code_sql('status')} FROM {_table(Clip)}",  # noqa: S608
        ("i8", "i8", "?", "i8"),
    )
    clip_ids, clip_contributor, clip_status_fixed, clip_status = _ordered_by(
        clip_ids, clip_contributor, clip_status_fixed, clip_status
    )
    vote_clip_ids, vote_voter_ids, vote_valid = _columns_fetch(
        f"SELECT clip_id, voter_id, verdict = '{Verdict.VALID.value}' FROM {_table(Vote)}",  # noqa: S608
        ("i8", "i8", "?"),
    )
    # A clip with a fixed (imported) status has no author in the engine's eyes: a curated corpus's
    # speakers did not earn trust on the platform, and must not become trustees through it.
    authors = _positions(contributor_ids, clip_contributor)
    return TrustSnapshot(
        contributor_ids=contributor_ids,
        founders=founders,
        clip_ids=clip_ids,
        clip_author=np.where(clip_status_fixed, NO_AUTHOR, authors).astype(np.int64),
        clip_fixed=np.where(clip_status_fixed, clip_status, NO_FIXED_STATUS).astype(np.int64),
        vote_clip=_positions(clip_ids, vote_clip_ids),
        vote_voter=_positions(contributor_ids, vote_voter_ids),
        vote_valid=vote_valid,
    )


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
    seconds: float = 0.0


def trust_recompute_all(*, trigger: str = "command") -> TrustRecomputeSummary:
    """Recompute every status and trust from all the votes and write back only what changed."""
    started = time.perf_counter()
    with transaction.atomic():
        trust_lock()
        summary = _recompute_locked()
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


def _recompute_locked() -> TrustRecomputeSummary:
    snapshot = trust_snapshot()
    result = snapshot.run()
    summary = TrustRecomputeSummary(
        iterations=result.iterations,
        cycle_resolved=result.cycle_resolved,
        capped=result.capped,
        trustees=int(result.trustees.sum()),
    )
    _clips_write_back(snapshot, result, summary)
    _contributors_write_back(snapshot, result, summary)
    return summary


def _clips_write_back(snapshot: TrustSnapshot, result: TrustResult, summary: TrustRecomputeSummary) -> None:
    """Write the clips whose status, score or counts differ from the result; tally the status changes.

    Compared in NumPy against one bulk read and written in one statement: row by row through the ORM,
    this took longer than everything else in a full recompute together."""
    ids, status, score, counted, valid = _columns_fetch(
        f"SELECT id, {_status_code_sql('status')}, score, "  # noqa: S608 (our own table and column names)
        f"CAST(votes_counted AS bigint), CAST(votes_valid_counted AS bigint) FROM {_table(Clip)}",
        ("i8", "i8", "f8", "i8", "i8"),
    )
    at = _positions(snapshot.clip_ids, ids)
    new_status = result.clip_status[at].astype(np.int64)
    new_score = result.clip_score[at]
    new_counted = result.clip_counted[at]
    new_valid = result.clip_valid_counted[at]
    changed = (status != new_status) | (score != new_score) | (counted != new_counted) | (valid != new_valid)
    moved = status[changed] * len(_CODE_STATUS) + new_status[changed]
    for pair, count in zip(*np.unique(moved[moved // len(_CODE_STATUS) != moved % len(_CODE_STATUS)],
                                      return_counts=True), strict=True):
        old, new = divmod(int(pair), len(_CODE_STATUS))
        summary.status_changes[(_CODE_STATUS[old].value, _CODE_STATUS[new])] += int(count)
    _rows_update(
        Clip,
        ids[changed],
        {
            "status": ("bigint", new_status[changed], _status_text_sql),
            "score": ("double precision", new_score[changed], None),
            "votes_counted": ("bigint", new_counted[changed], None),
            "votes_valid_counted": ("bigint", new_valid[changed], None),
        },
    )
    summary.clips_changed = int(changed.sum())


def _contributors_write_back(snapshot: TrustSnapshot, result: TrustResult, summary: TrustRecomputeSummary) -> None:
    """Write the contributors whose trust or trustee status differs from the result."""
    ids, trust, trustee = _columns_fetch(
        f"SELECT id, trust, is_trustee FROM {_table(Contributor)}",  # noqa: S608 (our own table name)
        ("i8", "f8", "?"),
    )
    at = _positions(snapshot.contributor_ids, ids)
    new_trust = result.contributor_trust[at]
    new_trustee = result.trustees[at]
    changed = (trust != new_trust) | (trustee != new_trustee)
    summary.trustees_gained += int((new_trustee & ~trustee).sum())
    summary.trustees_lost += int((trustee & ~new_trustee).sum())
    _rows_update(
        Contributor,
        ids[changed],
        {
            "trust": ("double precision", new_trust[changed], None),
            "is_trustee": ("boolean", new_trustee[changed], None),
        },
    )
    summary.contributors_changed = int(changed.sum())


# --- bulk reads and writes ------------------------------------------------------------------------
# PostgreSQL: binary COPY, parsed and built by NumPy as fixed-width records (no Python object per row or
# value). Elsewhere (SQLite in the tests): the same queries through the ordinary cursor.

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_TRAILER = b"\xff\xff"
_SQL_TYPES = {"bigint": "i8", "double precision": "f8", "boolean": "?"}


def _table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _status_code_sql(column: str) -> str:
    """SQL for a status column as its engine code (NULL for an unknown status, which the fetch refuses)."""
    cases = " ".join(f"WHEN '{status.value}' THEN {int(code)}" for status, code in _STATUS_CODE.items())
    return f"CAST(CASE {column} {cases} END AS bigint)"


def _status_text_sql(column: str) -> str:
    """SQL for an engine code as the status it stands for."""
    cases = " ".join(f"WHEN {code} THEN '{status.value}'" for code, status in _CODE_STATUS.items())
    return f"CASE {column} {cases} END"


def _record_dtype(dtypes: tuple[str, ...]) -> np.dtype:
    """One row of a binary COPY whose columns all have fixed widths: a field count, then each column's
    length and big-endian value."""
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for i, dtype in enumerate(dtypes):
        fields += [(f"length{i}", ">i4"), (f"value{i}", f">{dtype}")]
    return np.dtype(fields)


def _columns_fetch(query: str, dtypes: tuple[str, ...]) -> list[np.ndarray]:
    """The columns of ``query`` as arrays of the NumPy ``dtypes`` ('i8' bigint, 'f8' double precision, '?'
    boolean); the query gives each column exactly that SQL type, and no NULL."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(query)
            rows = np.array(cursor.fetchall(), dtype=object).reshape(-1, len(dtypes))
            return [rows[:, i].astype(dtype) for i, dtype in enumerate(dtypes)]
        with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            data = b"".join(copy)
    if not data.startswith(_COPY_SIGNATURE) or not data.endswith(_COPY_TRAILER):
        raise RuntimeError("unexpected COPY BINARY framing")
    extension = int.from_bytes(data[15:19], "big")
    body = memoryview(data)[19 + extension : -len(_COPY_TRAILER)]
    record = _record_dtype(dtypes)
    if len(body) % record.itemsize:
        raise RuntimeError(f"COPY rows are not {record.itemsize} bytes each: a column is NULL or of another type")
    rows = np.frombuffer(body, dtype=record)
    widths_ok = (rows["fields"] == len(dtypes)).all() and all(
        (rows[f"length{i}"] == np.dtype(dtype).itemsize).all() for i, dtype in enumerate(dtypes)
    )
    if not widths_ok:
        raise RuntimeError("COPY rows have a NULL or a column of another type")
    return [rows[f"value{i}"].astype(dtype) for i, dtype in enumerate(dtypes)]


def _ordered_by(ids: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """The arrays sorted by ``ids`` (a table comes back nearly in id order, which a stable sort exploits)."""
    order = np.argsort(ids, kind="stable")
    return [ids[order], *(column[order] for column in columns)]


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted_ids, ids)``; through a lookup table over the id range when the ids are dense
    (as auto-increment keys are), which is several times faster for millions of ids."""
    if not len(sorted_ids) or not len(ids):
        return np.searchsorted(sorted_ids, ids)
    low = int(sorted_ids[0])
    span = int(sorted_ids[-1]) - low + 1
    if span > 4 * len(sorted_ids) + 1024:
        return np.searchsorted(sorted_ids, ids)
    lookup = np.empty(span + 1, dtype=np.intp)
    lookup[:span] = np.searchsorted(sorted_ids, np.arange(low, low + span))
    lookup[span] = len(sorted_ids)  # ids past the range, as searchsorted places them
    return lookup[np.clip(ids - low, 0, span)]


def _rows_update(
    model: type, ids: np.ndarray, columns: dict[str, tuple[str, np.ndarray, Callable[[str], str] | None]]
) -> None:
    """``UPDATE`` the rows ``ids`` of ``model``'s table: ``columns`` maps a column to (its SQL type in
    transit, the new values, an optional SQL expression turning the value in transit into the stored one).

    PostgreSQL: one binary COPY into a temporary table and one ``UPDATE ... FROM``; elsewhere executemany."""
    if not len(ids):
        return
    table = _table(model)
    names = list(columns)
    if connection.vendor != "postgresql":
        values = []
        for name in names:
            _, array, to_stored = columns[name]
            values.append(_CODE_STATUS_TEXT[array].tolist() if to_stored is _status_text_sql else array.tolist())
        assignments = ", ".join(f"{name} = %s" for name in names)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608 (our own table and column names)
                list(zip(*values, ids.tolist(), strict=True)),
            )
        return
    dtypes = ("i8", *(_SQL_TYPES[columns[name][0]] for name in names))
    rows = np.empty(len(ids), dtype=_record_dtype(dtypes))
    rows["fields"] = len(dtypes)
    for i, (dtype, array) in enumerate(zip(dtypes, [ids, *(columns[name][1] for name in names)], strict=True)):
        rows[f"length{i}"] = np.dtype(dtype).itemsize
        rows[f"value{i}"] = array
    changes = "trust_changes"
    definition = ", ".join(["id bigint", *(f"{name} {columns[name][0]}" for name in names)])
    assignments = ", ".join(
        f"{name} = {to_stored(f'c.{name}') if to_stored else f'c.{name}'}"
        for name, (_, _, to_stored) in columns.items()
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {changes} ({definition}) ON COMMIT DROP")
        with cursor.copy(f"COPY {changes} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_SIGNATURE + bytes(8) + rows.tobytes() + _COPY_TRAILER)
        cursor.execute(f"ANALYZE {changes}")
        cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM {changes} AS c WHERE t.id = c.id")  # noqa: S608
        cursor.execute(f"DROP TABLE {changes}")


# --- the incremental path -------------------------------------------------------------------------


def trust_after_vote(*, clip: Clip) -> None:
    """Bring statuses and trust up to date after a vote on ``clip``; call inside the vote's transaction
    with the trust lock held."""
    if not _clip_rescore(clip) or clip.status_fixed:
        return
    author = Contributor.objects.select_for_update().get(pk=clip.contributor_id)
    if _contributor_retrust(author):
        _recompute_locked()


def trust_after_submission(*, contributor: Contributor) -> None:
    """A new clip counts in its author's total at once (the proposal's rule), diluting their trust until it
    is validated; a trustee may lose the status by recording. Call inside the upload's transaction."""
    trust_lock()
    author = Contributor.objects.select_for_update().get(pk=contributor.pk)
    if _contributor_retrust(author):
        _recompute_locked()


def _clip_rescore(clip: Clip) -> bool:
    """Recount the trustees' votes on one clip; returns whether its status changed."""
    counts = Vote.objects.filter(clip=clip, voter__is_trustee=True).aggregate(
        valid=Count("id", filter=Q(verdict=Verdict.VALID)), invalid=Count("id", filter=Q(verdict=Verdict.INVALID))
    )
    fixed = int(_STATUS_CODE[clip.status]) if clip.status_fixed else NO_FIXED_STATUS
    outcome = clip_outcome(counts["valid"], counts["invalid"], trust_params(), fixed_status=fixed)
    status = _CODE_STATUS[int(outcome.status)]
    changed = status != clip.status
    clip.status, clip.score = status, outcome.score
    clip.votes_counted, clip.votes_valid_counted = outcome.counted, counts["valid"]
    clip.save(update_fields=["status", "score", "votes_counted", "votes_valid_counted", "updated_at"])
    return changed


def _contributor_retrust(contributor: Contributor) -> bool:
    """Recompute one contributor's trust from their clips' statuses; returns whether trustee status flipped."""
    counts = Clip.objects.filter(contributor=contributor, status_fixed=False).aggregate(
        valid=Count("id", filter=Q(status=ClipStatus.VALID)),
        invalid=Count("id", filter=Q(status=ClipStatus.INVALID)),
        total=Count("id"),
    )
    trust = contributor_trust(counts["valid"], counts["invalid"], counts["total"], contributor.is_founding_trustee)
    trustee = contributor_is_trustee(trust, contributor.is_founding_trustee, trust_params())
    flipped = trustee != contributor.is_trustee
    if (trust, trustee) != (contributor.trust, contributor.is_trustee):
        contributor.trust, contributor.is_trustee = trust, trustee
        contributor.save(update_fields=["trust", "is_trustee"])
    return flipped


# --- founders -------------------------------------------------------------------------------------


def founders_set(*, usernames: list[str], founding: bool) -> list[Contributor]:
    """Name or remove founding trustees, then recompute: their votes start or stop counting everywhere."""
    with transaction.atomic():
        trust_lock()
        contributors = list(Contributor.objects.select_related("user").filter(user__username__in=usernames))
        missing = sorted(set(usernames) - {c.user.username for c in contributors})
        if missing:
            raise ServiceError("contributor_unknown", f"No contributor with the username: {', '.join(missing)}.")
        for contributor in contributors:
            contributor.is_founding_trustee = founding
            contributor.save(update_fields=["is_founding_trustee"])
        summary = _recompute_locked()
        TrustRecompute.objects.create(
            seconds=0.0,
            iterations=summary.iterations,
            cycle_resolved=summary.cycle_resolved,
            capped=summary.capped,
            clips_changed=summary.clips_changed,
            contributors_changed=summary.contributors_changed,
            trustees=summary.trustees,
            trigger="founders",
        )
    for contributor in contributors:
        contributor.refresh_from_db()
    return contributors
