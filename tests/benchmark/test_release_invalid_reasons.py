"""The datasheet summarises why trustees voted clips invalid: every invalid vote on the platform, by reason."""

from __future__ import annotations

import pytest

from benchmark.releases.datasheet import _invalid_reasons_paragraph
from contributors.models import Clip, Vote
from contributors.services.clips import clip_submit
from contributors.services.prompts import prompt_create
from contributors.services.trust import trust_recompute_all
from tests.benchmark.conftest import build, make_corpus, release_root
from tests.factories import ContributorFactory, FounderFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


def _rejected_clip(seed: int) -> Clip:
    prompt, _ = prompt_create(text="A rejected reading of this sentence.")
    return clip_submit(
        contributor=ContributorFactory(), prompt_id=prompt.pk, data=wav_bytes(speechlike(1.3, seed=seed))
    ).clip


def test_the_datasheet_counts_invalid_votes_by_reason_over_all_clips(settings):
    make_corpus(speakers=6, clips_each=1)
    founders = FounderFactory.create_batch(3)
    rejected = [_rejected_clip(seed) for seed in (901, 902)]
    for founder, reason in zip(founders, ["noise", "noise", "cut_off"], strict=True):
        Vote.objects.create(clip=rejected[0], voter=founder, verdict="invalid", reason=reason)
    Vote.objects.create(clip=rejected[1], voter=founders[0], verdict="invalid")  # cast before reasons were asked
    Vote.objects.create(clip=rejected[1], voter=founders[1], verdict="valid")
    trust_recompute_all()  # the votes were written raw: bring statuses up to date as the engine would

    release = build("v1")

    assert release.facts["votes"]["invalid_reasons"] == {"cut_off": 1, "noise": 2, "unstated": 1}
    readme = (release_root(settings, release) / "README.md").read_text()
    assert (
        "Invalid votes by reason, over all 4 invalid votes cast on the platform up to this build "
        "(on any clip, released or not" in readme
    )
    assert "noise 2, cut off 1, no reason (cast before reasons were asked) 1." in readme


def test_no_invalid_votes_is_said_plainly():
    assert _invalid_reasons_paragraph({}) == "Invalid votes by reason: none cast on the platform up to this build."
    assert _invalid_reasons_paragraph({"not_speech": 2, "wrong_sentence": 1}).endswith(
        ": wrong sentence 1, not speech 2."
    )
