"""The corpus manifest format, read in one place: the tab-separated file an outside corpus (speechocean762, the
demo's seed corpus) comes as, one row per utterance with its speaker, their gender and age, the audio's path and
the text. The platform imports it (contributors' import_corpus) and training reads it (training.ml.data); both
take its rows and its speakers' age bands from here."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

MANIFEST_COLUMNS = ("utt_id", "speaker", "gender", "age", "audio", "duration_s", "text")
# The platform's age bands (a contributor's profile offers the same): upper age in years, band.
AGE_BANDS = ((12, "0-12"), (17, "13-17"), (29, "18-29"), (44, "30-44"), (59, "45-59"))
OLDEST_BAND = "60+"


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (a missing file, missing columns); the message says which."""


def age_band(age: str | int | float) -> str:
    """A numeric age in years as the platform's band; a missing, unreadable or zero age is "" (not given)."""
    try:
        years = int(float(age))
    except (TypeError, ValueError):
        return ""
    if years <= 0:
        return ""
    return next((band for upper, band in AGE_BANDS if years <= upper), OLDEST_BAND)


def read_manifest(path: str | Path) -> Iterator[dict[str, str]]:
    """The manifest's rows as dicts of its columns (every one of MANIFEST_COLUMNS is there)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path} does not exist.")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path} lacks the columns: {', '.join(missing)}.")
        yield from reader
