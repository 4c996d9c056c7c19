"""Bulk reads and writes of whole tables as NumPy arrays, for the trust engine's recompute (millions of rows).

On PostgreSQL no Python object is made per row or value. A read packs each row into fixed-width binary on the server
(int8send || boolsend ...) and aggregates each range of the table into one bytea, which NumPy reads in place: COPY or
a cursor would hand Python one message per row, several seconds for ten million votes. The ranges are aggregated in
one statement, side by side when the server plans it in parallel. A write builds a binary COPY payload in NumPy.
Elsewhere (SQLite in the tests): the cursor. Column types in transit: 'i8', 'f8' or '?'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from django.db import connection, models

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_TRAILER = b"\xff\xff"
_SQL_TYPES = {"i8": "bigint", "f8": "double precision", "?": "boolean"}
_SEND = {"i8": "int8send", "f8": "float8send", "?": "boolsend"}
# PostgreSQL caps a value at 1 GB; a table is read in ranges of at most this much heap each, and a row
# packed is always smaller than the row stored, so one range's bytea stays well under the cap.
_READ_RANGE_BYTES = 2**30
# From this much heap a table is read in as many ranges as the server may scan in parallel (its default
# min_parallel_table_scan_size): a parallel plan costs more than it saves below.
_PARALLEL_MIN_BYTES = 8 * 2**20


def table_name(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def columns_fetch(model: type[models.Model], *columns: tuple[str, str], guard: str | None = None) -> list[np.ndarray]:
    """Every row of ``model``'s table as one array per column, each column given as (an SQL expression,
    its NumPy dtype: 'i8', 'f8' or '?'), in table order. A NULL is refused. ``guard``, an SQL condition on
    no column (evaluated once, in the statement's snapshot), reads no row at all when false.

    PostgreSQL: one statement, the table split into ranges of heap blocks (``block_ranges``) whose
    aggregates the server may compute side by side (a Parallel Append; the guard sits above it, where the
    leader evaluates it once), each range's rows packed into one bytea."""
    table = table_name(model)
    dtypes = [dtype for _, dtype in columns]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            where = f" WHERE {guard}" if guard else ""
            cursor.execute(f"SELECT {', '.join(sql for sql, _ in columns)} FROM {table}{where}")  # noqa: S608 (our SQL)
            rows = np.array(cursor.fetchall(), dtype=object).reshape(-1, len(columns))
            return [rows[:, i].astype(dtype) for i, dtype in enumerate(dtypes)]
        record = np.dtype([(f"c{i}", f">{dtype}") for i, dtype in enumerate(dtypes)])
        packed = " || ".join(f"{_SEND[dtype]}(CAST({sql} AS {_SQL_TYPES[dtype]}))" for sql, dtype in columns)
        ranges = block_ranges(cursor, model)
        query = " UNION ALL ".join(
            f"SELECT {i}, count(*), string_agg({packed}, ''::bytea) FROM {table}{f' WHERE {where}' if where else ''}"  # noqa: S608 (our SQL)
            for i, where in enumerate(ranges)
        )
        if guard:
            query = f"SELECT * FROM ({query}) AS ranges WHERE {guard}"  # noqa: S608 (our SQL)
        with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            data = b"".join(copy)
    parts = packed_rows(data, record, len(ranges), guarded=bool(guard))
    total = sum(len(part) for part in parts)
    arrays = [np.empty(total, dtype=dtype) for dtype in dtypes]
    at = 0
    for part in parts:  # in range order, so in table order
        for i, array in enumerate(arrays):
            array[at : at + len(part)] = part[f"c{i}"]
        at += len(part)
    return arrays


def block_ranges(cursor: Any, model: type[models.Model]) -> list[str]:
    """WHERE clauses (on ``ctid``, a TID range scan each) that split the table into ranges of heap blocks:
    at most _READ_RANGE_BYTES each, and, from _PARALLEL_MIN_BYTES of heap, one per process the server may
    give a parallel query (``max_parallel_workers_per_gather`` and the leader). The last range is open, so
    that rows in blocks added since the size was read are not missed. One empty clause (the whole table)
    for a small one."""
    cursor.execute(
        "SELECT pg_relation_size(%s::regclass), current_setting('block_size')::bigint,"
        " current_setting('max_parallel_workers_per_gather')::int",
        [model._meta.db_table],
    )
    size, block_size, workers = cursor.fetchone()
    ranges = -(-size // _READ_RANGE_BYTES)
    if size >= _PARALLEL_MIN_BYTES:
        ranges = max(ranges, 1 + workers)
    blocks = size // block_size
    if ranges <= 1 or blocks < ranges:
        return [""]
    bounds = [blocks * k // ranges for k in range(1, ranges)]
    clauses = [f"ctid < '({bounds[0]},0)'"]
    clauses += [f"ctid >= '({bounds[k]},0)' AND ctid < '({bounds[k + 1]},0)'" for k in range(len(bounds) - 1)]
    clauses.append(f"ctid >= '({bounds[-1]},0)'")
    return clauses


def packed_rows(data: bytes, record: np.dtype, ranges: int, *, guarded: bool = False) -> list[np.ndarray]:
    """The rows of each range, in range order, from a binary COPY of ``SELECT range, count(*),
    string_agg(packed rows)`` per range (none at all, when ``guarded``, if the guard was false)."""
    if not data.startswith(_COPY_SIGNATURE) or not data.endswith(_COPY_TRAILER):
        raise RuntimeError("unexpected COPY BINARY framing")
    at = 19 + int.from_bytes(data[15:19], "big")  # past the header and its extension
    parts: dict[int, np.ndarray] = {}
    while at + len(_COPY_TRAILER) < len(data):
        # Three fields: the range (4 bytes), the count (8), the packed rows.
        if data[at : at + 6] != b"\x00\x03\x00\x00\x00\x04" or data[at + 10 : at + 14] != b"\x00\x00\x00\x08":
            raise RuntimeError("unexpected COPY BINARY row")
        index = int.from_bytes(data[at + 6 : at + 10], "big")
        count = int.from_bytes(data[at + 14 : at + 22], "big")
        length = int.from_bytes(data[at + 22 : at + 26], "big", signed=True)
        if count * record.itemsize != max(length, 0):  # string_agg skips a row with a NULL: refuse it
            raise RuntimeError(f"{count} rows packed into {length} bytes: a column is NULL")
        parts[index] = np.frombuffer(data, dtype=record, count=count, offset=at + 26)
        at += 26 + max(length, 0)
    if at + len(_COPY_TRAILER) != len(data) or sorted(parts) != list(range(ranges if parts or not guarded else 0)):
        raise RuntimeError("unexpected COPY BINARY rows")
    return [parts[index] for index in sorted(parts)]


def ordered_by(ids: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """The arrays sorted by ``ids`` (a table comes back nearly in id order, which a stable sort exploits,
    and often exactly, which costs one comparison)."""
    if not len(ids) or bool((ids[1:] >= ids[:-1]).all()):
        return [ids, *columns]
    order = np.argsort(ids, kind="stable")
    return [ids[order], *(column[order] for column in columns)]


def positions(sorted_ids: np.ndarray, ids: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """``np.searchsorted(sorted_ids, ids)``; when the ids are dense (as auto-increment keys are), an offset
    from the first (no gap at all) or a lookup table over the id range, several times faster for millions.
    ``overwrite``: ``ids`` (an int64 array) may be overwritten, which spares allocating another as large."""
    if not len(sorted_ids) or not len(ids):
        return np.searchsorted(sorted_ids, ids)
    low = int(sorted_ids[0])
    span = int(sorted_ids[-1]) - low + 1
    if span > 4 * len(sorted_ids) + 1024:
        return np.searchsorted(sorted_ids, ids)
    offsets = np.subtract(ids, low, out=ids) if overwrite and ids.dtype == np.intp else ids - low
    if span == len(sorted_ids) and np.array_equal(sorted_ids, np.arange(low, low + span)):
        # Every id from low to high, once: the position is the offset (searchsorted's 0 or len outside).
        if offsets.min() < 0 or offsets.max() > span:  # never for a foreign key
            np.clip(offsets, 0, span, out=offsets)
        return offsets
    lookup = np.empty(span + 1, dtype=np.intp)
    lookup[:span] = np.searchsorted(sorted_ids, np.arange(low, low + span))
    lookup[span] = len(sorted_ids)  # ids past the range, as searchsorted places them
    return lookup.take(offsets, mode="clip")  # an id below the range takes lookup[0] = 0, as searchsorted


def rows_update(
    model: type[models.Model], ids: np.ndarray, columns: dict[str, tuple[str, np.ndarray, Callable[[str], str] | None]]
) -> None:
    """``UPDATE`` the rows ``ids`` of ``model``'s table. ``columns`` maps a column to (the NumPy dtype of its
    values in transit: 'i8', 'f8' or '?'; the values; an optional function from an SQL expression for the
    value in transit to one for the value stored).

    PostgreSQL: one binary COPY into a temporary table and one ``UPDATE ... FROM``; elsewhere executemany."""
    if not len(ids):
        return
    table = table_name(model)

    def stored(name: str, value: str) -> str:
        to_stored = columns[name][2]
        return to_stored(value) if to_stored else value

    if connection.vendor != "postgresql":
        assignments = ", ".join(f"{name} = {stored(name, '%s')}" for name in columns)
        rows = zip(*(array.tolist() for _, array, _ in columns.values()), ids.tolist(), strict=True)
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE id = %s", list(rows))  # noqa: S608
        return
    # A binary COPY row: the field count, then each field's length and big-endian value.
    values = [("i8", ids), *((dtype, array) for dtype, array, _ in columns.values())]
    layout = [("fields", ">i2")]
    for i, (dtype, _) in enumerate(values):
        layout += [(f"length{i}", ">i4"), (f"value{i}", f">{dtype}")]
    records = np.empty(len(ids), dtype=np.dtype(layout))
    records["fields"] = len(values)
    for i, (dtype, array) in enumerate(values):
        records[f"length{i}"] = np.dtype(dtype).itemsize
        records[f"value{i}"] = array
    definition = ", ".join(["id bigint", *(f"{name} {_SQL_TYPES[dtype]}" for name, (dtype, _, _) in columns.items())])
    assignments = ", ".join(f"{name} = {stored(name, f'c.{name}')}" for name in columns)
    with connection.cursor() as cursor:
        # Dropped at the end, so that a second recompute in the same transaction can make it again.
        cursor.execute(f"CREATE TEMPORARY TABLE bulk_changes ({definition}) ON COMMIT DROP")
        with cursor.copy("COPY bulk_changes FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_SIGNATURE + bytes(8) + records.tobytes() + _COPY_TRAILER)
        cursor.execute("ANALYZE bulk_changes")  # a join plan for the rows actually there
        cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM bulk_changes AS c WHERE t.id = c.id")  # noqa: S608
        cursor.execute("DROP TABLE bulk_changes")
