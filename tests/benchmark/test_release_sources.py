"""Provenance per clip, licence per source: a release mixing platform recordings (CC0) and an imported CC BY corpus
credits each source with its licence and clip count in LICENSE, the datasheet, the HF card and the citations."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import CommandError, call_command

from benchmark.releases.services import release_build, release_create
from contributors.models import Clip, CorpusSource, Provenance
from tests.benchmark.conftest import build, make_corpus, release_root

pytestmark = pytest.mark.django_db


def card(path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_each_source_is_credited_with_its_licence_and_count(settings, client):
    make_corpus(speakers=10, clips_each=2)
    make_corpus(speakers=6, clips_each=2, seed=90_000, provenance=Provenance.IMPORTED)
    release = build("mix")
    root = release_root(settings, release)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    by_source = {}
    for r in rows:
        by_source.setdefault((r["source"], r["licence"]), []).append(r)
    assert set(by_source) == {("openphone", "CC0-1.0"), ("test-corpus", "CC-BY-4.0")}
    imported = len(by_source[("test-corpus", "CC-BY-4.0")])
    platform = len(by_source[("openphone", "CC0-1.0")])
    assert imported == 12  # imported speakers are never hidden

    sources = {s["name"]: s for s in release.facts["sources"]}
    assert (sources["test-corpus"]["licence"], sources["test-corpus"]["clips"]) == ("CC-BY-4.0", imported)
    assert (sources["openphone"]["licence"], sources["openphone"]["clips"]) == ("CC0-1.0", platform)
    assert release.facts["licence"] == "CC0-1.0 AND CC-BY-4.0"

    licence = (root / "LICENSE").read_text()
    assert f"test-corpus (imported corpus): {imported} clips" in licence
    assert "Creative Commons Attribution 4.0 International (CC-BY-4.0)" in licence and "Test Corpus (2025)." in licence
    assert f"Recordings made on the OpenPhone platform: {platform} clips" in licence
    assert "CC0-1.0" in licence and "https://corpus.example/" in licence

    readme = (root / "README.md").read_text()
    assert "## Licences and sources" in readme and "CC0 1.0 covers only the clips recorded on the platform" in readme
    cc_by = "[CC-BY-4.0](https://creativecommons.org/licenses/by/4.0/legalcode)"
    assert f"| test-corpus | {cc_by} | {imported} |" in readme
    cite = readme.split("## How to cite", 1)[1]
    assert "@misc{openphone-mix" in cite and "Test Corpus (2025)." in cite

    for path in (root / "README.md", root / "hf" / "README.md"):
        meta = card(path)
        assert sorted(meta["license"]) == ["cc-by-4.0", "cc0-1.0"]
        assert meta["task_categories"] == ["automatic-speech-recognition"]
    hf_card = (root / "hf" / "README.md").read_text()
    assert "| test-corpus | CC-BY-4.0 |" in hf_card and "Test Corpus (2025)." in hf_card
    page = client.get("/releases/mix/").content.decode()
    assert f"<strong>CC-BY-4.0</strong> ({imported} clips)" in page
    assert f"<strong>CC0 1.0</strong> ({platform} clips)" in page


def test_a_platform_only_release_is_cc0_alone(release, settings):
    root = release_root(settings, release)
    assert [s["name"] for s in release.facts["sources"]] == ["openphone"] and release.facts["licence"] == "CC0-1.0"
    assert card(root / "README.md")["license"] == "cc0-1.0"
    assert "imported corpus" not in (root / "LICENSE").read_text()


def test_a_source_without_a_licence_stops_the_build_until_it_is_stated(settings, capsys):
    make_corpus(speakers=6, clips_each=1, provenance=Provenance.IMPORTED)
    CorpusSource.objects.update(licence="NOASSERTION")  # as the migration leaves an unknown legacy import

    release = release_create(version="n1")
    release = release_build(release_id=release.pk)
    assert release.status == "failed"
    assert "Clips of test-corpus have no licence a release can carry" in release.error
    assert "manage.py corpus_source test-corpus --licence" in release.error

    with pytest.raises(CommandError, match=r"Unknown licence 'MPL-2\.0'"):
        call_command("corpus_source", "test-corpus", licence="MPL-2.0", citation="x")
    with pytest.raises(CommandError, match="No clips were imported from 'nope'"):
        call_command("corpus_source", "nope", licence="CC0-1.0", citation="x")
    call_command("corpus_source", "test-corpus", licence="cc-by-sa-4.0", citation="Test (2020).")
    assert "test-corpus: CC-BY-SA-4.0, 6 clips." in capsys.readouterr().out
    assert build("n1").facts["licence"] == "CC-BY-SA-4.0"
    assert Clip.objects.filter(source__licence="CC-BY-SA-4.0").count() == 6
