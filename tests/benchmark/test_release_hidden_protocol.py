"""Issue 16 (6, 7): hidden only from platform speakers, small groups withheld, shared prompts never scored."""

from __future__ import annotations

import json

import pytest

from benchmark.models import SpeakerSplit
from benchmark.releases.exports import bigram_transcripts, scored_entries
from benchmark.releases.selectors import release_hidden_entries
from contributors.models import Prompt, Provenance
from tests.benchmark.conftest import SENTENCES, build, make_corpus, release_root

pytestmark = pytest.mark.django_db


def test_an_imported_corpus_contributes_no_hidden_speakers_and_the_release_says_so(settings):
    make_corpus(speakers=14, clips_each=2, provenance=Provenance.IMPORTED)
    release = build("v1")
    assert release_hidden_entries(release=release) == []
    assert not SpeakerSplit.objects.filter(split="hidden").exists()
    assert release.facts["hidden_split"]["formed"] is False
    assert release.facts["hidden_split"]["leaderboard_split"] == "test"
    assert "no hidden split" in (release_root(settings, release) / "README.md").read_text()


def test_platform_speakers_form_a_hidden_split_of_at_least_five_and_small_groups_are_withheld(settings):
    imported = make_corpus(speakers=10, clips_each=1, provenance=Provenance.IMPORTED)
    recorded = make_corpus(speakers=8, clips_each=1, seed=500_000)
    release = build("v1")
    hidden = {e.speaker_id for e in release_hidden_entries(release=release)}
    assert len(hidden) >= 5 and hidden <= {c.speaker_id for c in recorded}
    assert not hidden & {c.speaker_id for c in imported}
    for split, attrs in release.facts["demographics"].items():
        for attr, counts in attrs.items():
            assert all(n >= 5 for v, n in counts.items() if v not in ("withheld", "not given")), (split, attr)


def test_shared_prompts_are_released_but_neither_scored_nor_in_the_bigram(settings):
    make_corpus(speakers=14, clips_each=3)
    Prompt.objects.filter(text=SENTENCES[0]).update(prompt_type="shared")
    release = build("v1")
    rows = [json.loads(line) for line in (release_root(settings, release) / "manifest.jsonl").read_text().splitlines()]
    assert any(r["prompt_type"] == "shared" for r in rows)  # they stay in the files
    from benchmark.releases.exports import entry_from_json

    entries = [entry_from_json(r) for r in rows] + release_hidden_entries(release=release)
    kept = scored_entries(entries)
    assert kept and all(e.prompt_type != "shared" for e in kept)
    shared_phones = [[list(w) for w in e.phones] for e in entries if e.prompt_type == "shared"]
    train = bigram_transcripts(entries)
    assert train and len(train) == sum(1 for e in kept if e.split == "train")
    assert not any(t == p for t in train for p in shared_phones)
