"""The demo seed: accounts, prompts and espeak-ng clips through the real upload pipeline."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from benchmark.models import Release
from contributors.demo_sentences import SENTENCES_SOURCE, demo_sentences
from contributors.models import Clip, ClipStatus, Contributor, Prompt, PromptType, Vote
from contributors.services.prompts import prompt_create
from demo import seed as demo
from speech.pronunciation import pronounce
from speech.text import normalise_words
from tests.demo.conftest import needs_espeak

pytestmark = pytest.mark.usefixtures("demo_isolated")


def test_demo_prompts_are_pronounceable_and_mixed():
    for text, _ in demo.DEMO_PROMPTS:
        pronounce(normalise_words(text))  # raises MissingPronunciations naming any word CMUdict lacks
    types = [prompt_type for _, prompt_type in demo.DEMO_PROMPTS]
    assert types.count(PromptType.SHARED) == 4
    assert types.count(PromptType.COVERAGE) == 20
    assert types.count(PromptType.DIVERSE) == 16
    assert len({text for text, _ in demo.DEMO_PROMPTS}) == len(demo.DEMO_PROMPTS)


@needs_espeak
@pytest.mark.django_db
def test_demo_seeds_founders_prompts_and_clips_and_a_second_seed_adds_nothing(monkeypatch):
    # A first seed stops part-way (here at the votes; on a real machine, Ctrl-C or a refused account): what it made
    # is only the demo's own, so `make run`'s `demo --if-empty` goes on with it instead of refusing for good.
    def stop(**kwargs):
        raise demo.ServiceError("stopped", "stopped part-way")

    monkeypatch.setattr(demo, "_seed_votes", stop)
    args = ["--if-empty", "--contributors", "3", "--corpus-speakers", "2", "--no-release"]
    with pytest.raises(CommandError, match="stopped part-way"):
        call_command("demo", *args, stdout=io.StringIO(), verbosity=0)
    assert Clip.objects.exists() and not get_user_model().objects.filter(username="admin").exists()
    assert demo.demo_database_is_empty()
    monkeypatch.undo()

    out = io.StringIO()
    # The release the demo ends with is tests/demo/test_demo_release.py's; here, what comes before it.
    call_command("demo", *args, stdout=out, verbosity=0)

    assert demo.demo_is_seeded()
    assert Prompt.objects.filter(source=demo.DEMO_SOURCE).count() == len(demo.DEMO_PROMPTS)
    assert Prompt.objects.filter(source=SENTENCES_SOURCE).count() == len(demo_sentences())
    founders = Contributor.objects.filter(is_founding_trustee=True).select_related("user")
    assert sorted(c.user.username for c in founders) == [f"founder{i}" for i in range(1, 8)]
    assert all(c.is_trustee for c in founders)
    assert all(c.has_consented and c.user.check_password(demo.DEMO_PASSWORD) for c in founders)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.check_password(demo.DEMO_PASSWORD)
    assert demo.DEMO_PASSWORD in out.getvalue()

    shared = set(Prompt.objects.filter(prompt_type=PromptType.SHARED).values_list("pk", flat=True))
    simulated = [s.username for s in demo.SIMULATED[:3]]
    for username in simulated:
        their_clips = Clip.objects.filter(contributor__user__username=username)
        read = set(their_clips.values_list("prompt_id", flat=True))
        assert shared <= read
        assert len(read) == len(shared) + demo.SIMULATED_PROMPTS_EACH
    for founder in founders:
        assert founder.clips.count() == demo.FOUNDER_PROMPTS_EACH

    imported = Clip.objects.filter(contributor__user__username__startswith=demo.CORPUS_SOURCE)
    assert imported.count() == 2 * (4 + demo.CORPUS_PROMPTS_EACH)  # every shared prompt and a share of the others
    assert not imported.exclude(status=ClipStatus.VALID).exists()
    recorded = list(Clip.objects.exclude(pk__in=imported.values("pk")))
    assert len(recorded) == 3 * (len(shared) + demo.SIMULATED_PROMPTS_EACH) + 7 * demo.FOUNDER_PROMPTS_EACH
    # Simulated trustees validated through the vote service, so the demo has valid clips.
    assert Vote.objects.count() > 0
    assert Clip.objects.filter(status=ClipStatus.VALID, votes_counted__gte=6).exists()
    assert not Release.objects.exists()  # --no-release
    for clip in recorded:
        assert clip.duration_s > 1.0
        assert clip.clipping_ratio == 0.0
        with default_storage.open(clip.audio.name, "rb") as handle:
            info = sf.info(io.BytesIO(handle.read()))
        assert (info.format, info.samplerate, info.channels) == ("FLAC", 16_000, 1)
        assert info.duration == pytest.approx(clip.duration_s)
    # The first three simulated contributors upload WAV at 22.05 kHz, FLAC, and 48 kHz stereo WAV.
    assert {c.original_format for c in recorded} >= {"WAV/PCM_16", "FLAC/PCM_16"}
    assert any(c.original_sample_rate == 48_000 and c.original_channels == 2 for c in recorded)

    counts = (get_user_model().objects.count(), Prompt.objects.count(), Clip.objects.count(), Vote.objects.count())
    out = io.StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "no demo seeded" in out.getvalue()
    assert (get_user_model().objects.count(), Prompt.objects.count(), Clip.objects.count()) == counts[:3]

    # Seeding again (without --if-empty) keeps every reading it finds (many are voted on, some valid: they cannot
    # be replaced) and synthesises none of them again; only the imported corpus is spoken again, and found there.
    said: list[str] = []
    spoken: list[str] = []

    def speak(**kwargs):
        spoken.append(kwargs["speaker"].username)
        return recording(**kwargs)

    recording = demo.demo_recording
    monkeypatch.setattr(demo, "demo_recording", speak)
    again = demo.demo_seed(out=said.append, progress=False, contributors=3, corpus_speakers=2, release=False)
    assert again.prompts_created == 0
    assert again.clips == len(recorded) and again.clips_created == 0
    assert again.audio_seconds == pytest.approx(sum(c.duration_s for c in recorded))
    assert set(spoken) == {v.username for v in demo.CORPUS_VOICES[:2]}
    assert Clip.objects.count() == counts[2]
    assert any(f"0 clips imported as validated ({imported.count()} already there)" in line for line in said)


@pytest.mark.django_db
def test_every_demo_voice_signs_up_and_the_young_with_a_guardians_agreement():
    # The suite's seeds record with the first few simulated contributors; `make run` signs up all of them.
    for speaker in (*demo.FOUNDERS, *demo.SIMULATED):
        demo._seed_account(speaker, founding_trustee=speaker in demo.FOUNDERS, out=print)
    contributors = Contributor.objects.select_related("user")
    assert contributors.count() == len(demo.FOUNDERS) + len(demo.SIMULATED)
    young = [c for c in contributors if c.age_band in ("0-12", "13-17")]
    assert len(young) >= 4
    assert all(c.has_consented for c in contributors)
    assert all(c.guardian_consent_at is not None and "@" in c.guardian_email for c in young)


@pytest.mark.django_db
def test_if_empty_leaves_a_database_with_prompts_alone():
    prompt_create(text="The cat sat on the mat.", source="operator")
    out = io.StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "no demo seeded" in out.getvalue()
    assert not demo.demo_is_seeded()
    assert not Contributor.objects.exists()


@pytest.mark.django_db
def test_if_empty_leaves_a_database_with_a_visitor_alone():
    demo._seed_account(demo.FOUNDERS[0], founding_trustee=True, out=print)  # as a seed stopped part-way left it
    assert demo.demo_database_is_empty()
    demo.contributor_signup(username="visitor", password="a long passphrase 42", cc0_consent=True)
    out = io.StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "no demo seeded" in out.getvalue()
    assert not demo.demo_is_seeded()


@pytest.mark.django_db
def test_missing_espeak_is_a_command_error(monkeypatch):
    monkeypatch.setattr(demo, "ESPEAK", "espeak-ng-not-installed")
    with pytest.raises(CommandError, match="apt-get install espeak-ng"):
        call_command("demo")
    assert not Prompt.objects.exists()


@pytest.mark.django_db
def test_demo_is_refused_over_https(settings):
    settings.HTTPS = True
    with pytest.raises(CommandError, match="production"):
        call_command("demo")


def test_demo_voices_keep_their_variant():
    # espeak-ng 1.51 silently drops the variant of a bare language code such as "en-gb+f3", so every
    # British speaker would come out as the same default male voice.
    for speaker in demo.FOUNDERS + demo.SIMULATED:
        assert not speaker.voice.startswith("en-gb+"), speaker.username
    assert len({s.username for s in demo.FOUNDERS + demo.SIMULATED}) == len(demo.FOUNDERS + demo.SIMULATED)
