"""The corpus manifest format, read in one place for the import and for training: one age mapping, clear refusals."""

from __future__ import annotations

import pytest

from speech.corpus import ManifestError, age_band, read_manifest


@pytest.mark.parametrize(
    ("age", "band"),
    [("6", "0-12"), ("12", "0-12"), ("13", "13-17"), ("18", "18-29"), ("44.9", "30-44"), (59, "45-59"), ("60", "60+"),
     ("0", ""), ("", ""), ("unknown", ""), (None, "")],
)  # fmt: skip
def test_ages_fall_in_the_platforms_bands(age, band):
    assert age_band(age) == band


def test_rows_come_with_every_column_and_a_bad_file_is_named(tmp_path):
    good = tmp_path / "manifest.tsv"
    good.write_text("utt_id\tspeaker\tgender\tage\taudio\tduration_s\ttext\nu1\ts1\tf\t9\ta/u1.flac\t1.5\tHELLO\n")
    assert [row["age"] for row in read_manifest(good)] == ["9"]

    short = tmp_path / "short.tsv"
    short.write_text("utt_id\tspeaker\taudio\ttext\n")
    with pytest.raises(ManifestError, match="lacks the columns: gender, age, duration_s"):
        list(read_manifest(short))
    with pytest.raises(ManifestError, match="does not exist"):
        list(read_manifest(tmp_path / "nowhere.tsv"))
