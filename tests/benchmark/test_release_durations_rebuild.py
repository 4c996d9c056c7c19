"""The datasheet's clip durations per split (a table of quantiles the datasheet page renders), and a rebuild of the
same release that gives the same bytes, file for file, whichever way the builder spreads its work."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.test import Client

from benchmark.models import Release, ReleaseStatus
from benchmark.releases.datasheet import DURATION_QUANTILES, duration_quantiles
from benchmark.releases.services import release_build, release_create

pytestmark = pytest.mark.django_db


def test_duration_quantiles_are_numpys_linear_percentiles():
    rng = random.Random(7)
    for n in (1, 2, 5, 101):
        durations = [round(rng.uniform(0.5, 9.0), 4) for _ in range(n)]
        got = duration_quantiles(durations)
        assert got["clips"] == n and got["mean"] == round(float(np.mean(durations)), 2)
        for name, percent in DURATION_QUANTILES:
            assert got[name] == pytest.approx(float(np.percentile(durations, percent)), abs=0.005), (n, name)
    assert duration_quantiles([]) == {"clips": 0}


def test_the_datasheet_page_shows_each_splits_durations_and_a_rebuild_is_byte_identical(release, settings):
    facts = release.facts
    page = Client().get(f"/releases/{release.version}/datasheet/").content.decode()
    table = page.split("Clip durations (seconds)", 1)[1].split("</table>", 1)[0]
    for split in ("train", "dev", "test", "all public"):
        q = facts["duration_quantiles"][split]
        assert q["clips"] == facts["splits"].get(split, {"clips": q["clips"]})["clips"] > 0
        cells = [str(q[k]) for k in ("clips", "min", "median", "max")]
        row = next(r for r in table.split("<tr>") if f"<td>{split}</td>" in r)
        assert all(f"<td>{c}</td>" in row for c in cells), (split, row)

    # The same release built again (a failed version is rebuilt under its name): every published file has the
    # bytes it had, the tars, the Parquet shards, the plots and the checksums included.
    before = dict(release.files.values_list("path", "sha256"))
    Release.objects.filter(pk=release.pk).update(status=ReleaseStatus.FAILED)
    again = release_build(release_id=release_create(version=release.version).pk)
    assert again.status == ReleaseStatus.READY, again.error
    assert dict(again.files.values_list("path", "sha256")) == before
