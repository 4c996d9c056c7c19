"""core.pgbulk: whole columns in and out as NumPy arrays (binary COPY on PostgreSQL, the cursor elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from contributors.models import Contributor
from core import pgbulk
from tests.factories import ContributorFactory


@pytest.mark.django_db
def test_columns_come_back_in_table_order_and_an_update_writes_exactly_the_rows_given():
    people = [ContributorFactory(trust=0.1 * i, is_trustee=i % 2 == 0) for i in range(5)]
    ids, trust, trustee = pgbulk.columns_fetch(Contributor, ("id", "i8"), ("trust", "f8"), ("is_trustee", "?"))
    ids, trust, trustee = pgbulk.ordered_by(ids, trust, trustee)
    assert ids.tolist() == [p.pk for p in people]
    assert trust.tolist() == pytest.approx([0.1 * i for i in range(5)])
    assert trustee.tolist() == [True, False, True, False, True]

    changed = np.array([people[1].pk, people[3].pk], dtype=np.int64)
    pgbulk.rows_update(
        Contributor,
        changed,
        {"trust": ("f8", np.array([0.9, 0.8]), None), "is_trustee": ("?", np.array([True, True]), None)},
    )
    stored = {c.pk: (c.trust, c.is_trustee) for c in Contributor.objects.all()}
    assert stored[people[1].pk] == (pytest.approx(0.9), True) and stored[people[3].pk] == (pytest.approx(0.8), True)
    assert stored[people[0].pk] == (0.0, True) and stored[people[2].pk] == (pytest.approx(0.2), True)


@pytest.mark.django_db
def test_a_guard_that_is_false_reads_no_row():
    ContributorFactory()
    (ids,) = pgbulk.columns_fetch(Contributor, ("id", "i8"), guard="1 = 0")
    assert len(ids) == 0


@pytest.mark.parametrize(
    "sorted_ids",
    [np.arange(10, 20), np.array([3, 4, 6, 7, 50]), np.array([5, 1_000_000, 2_000_000]), np.array([], dtype=np.int64)],
)
def test_positions_are_searchsorteds(sorted_ids):
    ids = np.array([0, 3, 10, 12, 19, 20, 50, 999_999, 1_000_000, 3_000_000], dtype=np.intp)
    expected = np.searchsorted(sorted_ids, ids).tolist()
    assert pgbulk.positions(sorted_ids, ids.copy()).tolist() == expected
    assert pgbulk.positions(sorted_ids, ids.copy(), overwrite=True).tolist() == expected


def test_copy_framing_that_is_not_postgresqls_is_refused():
    record = np.dtype([("c0", ">i8")])
    with pytest.raises(RuntimeError, match="framing"):
        pgbulk.packed_rows(b"not a copy", record, 1)
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    # One range whose count says 2 rows but whose bytes hold 1: string_agg skipped a NULL.
    row = b"\x00\x03" + b"\x00\x00\x00\x04" + (0).to_bytes(4, "big") + b"\x00\x00\x00\x08" + (2).to_bytes(8, "big")
    row += (8).to_bytes(4, "big", signed=True) + (7).to_bytes(8, "big")
    with pytest.raises(RuntimeError, match="NULL"):
        pgbulk.packed_rows(header + row + b"\xff\xff", record, 1)
    good = row[:14] + (1).to_bytes(8, "big") + row[22:]
    (part,) = pgbulk.packed_rows(header + good + b"\xff\xff", record, 1)
    assert part["c0"].tolist() == [7]
