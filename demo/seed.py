"""The demo seed: founding trustees, an admin, original prompts and clips spoken by espeak-ng voices.

Everything goes through the same services a real sign-up, prompt import and upload use; the only
difference is that the "microphone" is espeak-ng. The seed is deterministic (espeak-ng is, and the
noise is drawn from seeded generators), so a second run finds every account, prompt and clip already
there and adds nothing: an interrupted seed is finished by running it again.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from tqdm import tqdm

from contributors.demo_prompts import COVERAGE_PROMPTS, SHARED_PROMPTS
from contributors.demo_sentences import SENTENCES_PATH, SENTENCES_SOURCE
from contributors.models import Clip, ClipStatus, Contributor, InvalidReason, Prompt, PromptType, Verdict
from contributors.services.accounts import contributor_for_user, contributor_signup
from contributors.services.assignments import validation_assign
from contributors.services.clips import clip_submit
from contributors.services.prompt_selection import PromptImportReport, prompts_import
from contributors.services.prompts import lexicon_as_mapping, prompt_create
from contributors.services.trust import trust_recompute_all
from contributors.services.votes import vote_cast
from core.errors import ServiceError

# Published on purpose (printed after every seed) so a demo can be logged into; demo accounts only.
DEMO_PASSWORD = "demo-password-123"  # noqa: S105
DEMO_SOURCE = "demo"  # Prompt.source of the demo's sentences; demo_is_seeded() looks for it
DEMO_SEED = 20_250_601  # every random choice of the seed derives from this
ESPEAK = "espeak-ng"
ADMIN_USERNAME = "admin"
SIMULATED_PROMPTS_EACH = 5  # besides every shared prompt
FOUNDER_PROMPTS_EACH = 12  # founders record too: the demo's corpus needs their voices
# Votes an operator grants each demo founder on top of those their recordings earn, so that whoever logs in
# as a founder after the seed can still validate (the seed itself spends the earned ones).
DEMO_FOUNDER_ALLOWANCE = 500
DEMO_VOTE_ERROR_RATE = 0.05  # simulated trustees misjudge a good clip this often
DEMO_PENDING_SHARE = 0.25  # of the recordings, left pending by the seed's votes, for a visitor to validate

# Original sentences written for this project (not from TIMIT or any other corpus), with the shared and
# coverage prompts of contributors/demo_prompts.py.
DIVERSE_PROMPTS = (
    "Could you pass me the salt, please?",
    "The ticket costs $12, and the train leaves at 8 in the morning.",
    "My sister just moved into a small apartment downtown.",
    "We ran out of milk, so I will stop at the store on my way home.",
    "The meeting has been moved to Tuesday afternoon.",
    "Don't forget to water the plants while I am away.",
    "It rained all weekend, but we still had a lovely time.",
    "He fixed the bike with an old wrench and a bit of tape.",
    "Turn left at the bakery and keep going until you see the park.",
    "The library closes early on public holidays.",
    "She laughed so hard that she nearly dropped her coffee.",
    "Let's take the train instead of driving through the city.",
    "My grandfather still writes letters by hand every Sunday.",
    "The soup needs a little more pepper and a pinch of salt.",
    "Our team won the game in the very last minute.",
    "Please call me back when you have a moment to talk.",
)
DEMO_PROMPTS: tuple[tuple[str, str], ...] = (
    *((text, PromptType.SHARED) for text in SHARED_PROMPTS),
    *((text, PromptType.COVERAGE) for text in COVERAGE_PROMPTS),
    *((text, PromptType.DIVERSE) for text in DIVERSE_PROMPTS),
)


@dataclass(frozen=True)
class DemoSpeaker:
    """A demo account and the espeak-ng voice that stands in for its owner.

    ``upload`` is the file the simulated browser sends: "wav" (espeak's 22.05 kHz mono), "flac",
    "wav48" (48 kHz stereo), "wav16" (16 kHz mono) or "flac44" (44.1 kHz FLAC)."""

    username: str
    # espeak-ng voice + variant. "en" is British English; espeak-ng 1.51 drops the variant of "en-gb+f3"
    # (a bare language code), so British voices are spelled "en+f3" or "en-gb-x-rp+f3".
    voice: str
    pitch: int  # espeak-ng -p, 0..99
    speed: int  # espeak-ng -s, words per minute
    gender: str
    age_band: str
    accent: str
    first_language: str = "English"
    upload: str = "wav"


FOUNDERS = (
    DemoSpeaker("founder1", "en-us+m3", 40, 160, "male", "45-59", "US General"),
    DemoSpeaker("founder2", "en+f1", 55, 155, "female", "30-44", "Southern British", upload="flac"),
    DemoSpeaker("founder3", "en-us+f3", 50, 170, "female", "60+", "US General"),
    # Six counted votes validate a clip (the Wilson bound at z = 1.96), so the demo needs more founders.
    DemoSpeaker("founder4", "en-us+m2", 35, 165, "male", "30-44", "US General", upload="wav48"),
    DemoSpeaker("founder5", "en+m4", 45, 150, "male", "60+", "Southern British"),
    DemoSpeaker("founder6", "en-us+f1", 65, 160, "female", "18-29", "US General", upload="flac44"),
    DemoSpeaker("founder7", "en-gb-scotland+f4", 60, 155, "female", "45-59", "Scottish", upload="flac"),
)
SIMULATED = (
    DemoSpeaker("demo-ava", "en-us+f2", 62, 165, "female", "30-44", "US General"),
    DemoSpeaker("demo-ben", "en-us+m1", 38, 150, "male", "45-59", "US General", upload="flac"),
    DemoSpeaker("demo-chloe", "en+f3", 58, 170, "female", "18-29", "Southern British", upload="wav48"),
    DemoSpeaker("demo-dev", "en-gb-x-gbcwmd+m3", 45, 160, "male", "18-29", "West Midlands", "Punjabi"),
    DemoSpeaker("demo-ella", "en-us+f4", 80, 145, "female", "0-12", "US General"),
    DemoSpeaker("demo-finn", "en-gb-scotland+m2", 30, 140, "male", "60+", "Scottish", upload="flac"),
    DemoSpeaker("demo-grace", "en-029+f1", 55, 155, "female", "45-59", "Caribbean", upload="flac44"),
    DemoSpeaker("demo-hugo", "en-us-nyc+m4", 42, 185, "male", "30-44", "New York City", upload="wav16"),
    DemoSpeaker("demo-isla", "en-gb-x-rp+f5", 75, 150, "female", "0-12", "Southern British"),
    DemoSpeaker("demo-jun", "en-us+klatt", 50, 175, "male", "18-29", "US General", "Korean", upload="wav48"),
    DemoSpeaker("demo-kim", "en-gb-x-gbclan+f2", 60, 190, "other", "13-17", "Northern English", upload="flac"),
    DemoSpeaker("demo-leo", "en-us+f5", 88, 135, "male", "0-12", "US General"),
)
# A read-speech seed corpus, imported as already validated the way an existing open corpus would be
# (`manage.py import_corpus --validated`): enough speech for the demo release to train a teacher and its mimic
# on. Its speakers are more espeak-ng voices, each reading every shared prompt and a share of the others.
CORPUS_SOURCE = "demo-corpus"
CORPUS_PROMPTS_EACH = 16
CORPUS_VOICES = (
    DemoSpeaker("c01", "en-us+m5", 45, 160, "male", "30-44", "US General", upload="flac"),
    DemoSpeaker("c02", "en-us+f3", 70, 150, "female", "18-29", "US General", upload="flac"),
    DemoSpeaker("c03", "en+m2", 40, 170, "male", "45-59", "Southern British", upload="flac"),
    DemoSpeaker("c04", "en+f4", 62, 145, "female", "60+", "Southern British", upload="flac"),
    DemoSpeaker("c05", "en-gb-scotland+m5", 35, 155, "male", "30-44", "Scottish", upload="flac"),
    DemoSpeaker("c06", "en-gb-scotland+f2", 66, 165, "female", "18-29", "Scottish", upload="flac"),
    DemoSpeaker("c07", "en-029+m3", 48, 150, "male", "45-59", "Caribbean", upload="flac"),
    DemoSpeaker("c08", "en-029+f4", 58, 170, "female", "30-44", "Caribbean", upload="flac"),
    DemoSpeaker("c09", "en-us-nyc+m6", 38, 180, "male", "18-29", "New York City", upload="flac"),
    DemoSpeaker("c10", "en-us-nyc+f5", 72, 160, "female", "45-59", "New York City", upload="flac"),
    DemoSpeaker("c11", "en-gb-x-rp+m7", 30, 150, "male", "60+", "Southern British", upload="flac"),
    DemoSpeaker("c12", "en-gb-x-rp+f1", 60, 175, "female", "30-44", "Southern British", upload="flac"),
    DemoSpeaker("c13", "en-gb-x-gbclan+m4", 44, 165, "male", "18-29", "Northern English", upload="flac"),
    DemoSpeaker("c14", "en-gb-x-gbclan+f3", 64, 155, "female", "45-59", "Northern English", upload="flac"),
    DemoSpeaker("c15", "en-gb-x-gbcwmd+m6", 50, 140, "male", "30-44", "West Midlands", upload="flac"),
    DemoSpeaker("c16", "en-gb-x-gbcwmd+f5", 68, 185, "female", "18-29", "West Midlands", upload="flac"),
)
_AGE_FOR_BAND = {"0-12": 10, "13-17": 15, "18-29": 24, "30-44": 37, "45-59": 52, "60+": 67}
_SPEAKER_KEYS = {speaker.username: key for key, speaker in enumerate(FOUNDERS + SIMULATED + CORPUS_VOICES)}


@dataclass(frozen=True)
class DemoSummary:
    founders: list[str]
    contributors: list[str]  # the simulated ones
    prompts: int
    prompts_created: int
    clips: int
    clips_created: int
    audio_seconds: float
    elapsed_s: float
    password: str = DEMO_PASSWORD


def demo_is_seeded() -> bool:
    """True once any demo prompt exists."""
    return Prompt.objects.filter(source=DEMO_SOURCE).exists()


def demo_database_is_empty() -> bool:
    """What ``demo --if-empty`` waits for: no contributor and no prompt yet, or only those of a demo seed that
    stopped before its end (the admin account, made last), which a second seed finishes: it keeps what the
    first one made."""
    if get_user_model().objects.filter(username__iexact=ADMIN_USERNAME).exists():
        return not (Contributor.objects.exists() or Prompt.objects.exists())
    demo_names = [s.username for s in (*FOUNDERS, *SIMULATED)]
    foreign_contributors = Contributor.objects.exclude(user__username__in=demo_names).exclude(
        user__username__startswith=f"{CORPUS_SOURCE}-"
    )
    foreign_prompts = Prompt.objects.exclude(source__in=[DEMO_SOURCE, SENTENCES_SOURCE, CORPUS_SOURCE])
    return not (foreign_contributors.exists() or foreign_prompts.exists())


def _check_can_seed() -> str:
    """The espeak-ng executable; refuses on a site served over HTTPS (production, by the settings'
    convention), where a superuser with a published password would be a hole."""
    if getattr(settings, "HTTPS", False):
        raise ServiceError(
            "demo_refused",
            "HTTPS is on, so this looks like production: the demo creates accounts with a published "
            "password and is refused here.",
        )
    path = shutil.which(ESPEAK)
    if path is None:
        raise ServiceError(
            "demo_espeak_missing",
            "The demo speaks its clips with espeak-ng, which is not installed; "
            "install it with `sudo apt-get install espeak-ng` (or `brew install espeak-ng`) and run again.",
        )
    return path


def demo_seed(
    *,
    out: Callable[[str], None] = print,
    progress: bool = True,
    contributors: int | None = None,
    corpus_speakers: int | None = None,
    release: bool = True,
) -> DemoSummary:
    """Create the demo's accounts, prompts and clips; what already exists is kept. ``contributors``
    limits how many simulated contributors record, ``corpus_speakers`` how many voices the imported seed
    corpus has (all of them by default); ``release`` builds release demo-1 from the valid clips."""
    started = time.monotonic()
    espeak = _check_can_seed()
    speakers = SIMULATED if contributors is None else SIMULATED[: max(contributors, 0)]

    prompts, prompts_created = _seed_prompts()
    out(f"Prompts: {len(prompts)} demo sentences ({prompts_created} new).")
    sentences = _seed_sentences()
    out(f"Sentences for visitors to record: {sentences.lines} ({sentences.created} new).")
    founders = [_seed_account(s, founding_trustee=True, out=out) for s in FOUNDERS]
    simulated = [_seed_account(s, founding_trustee=False, out=out) for s in speakers]

    plan = _reading_plan(prompts, speakers=len(simulated))
    readers = [*zip(speakers, simulated, strict=True), *zip(FOUNDERS, founders, strict=True)]
    clips = clips_created = 0
    audio_seconds = 0.0
    # What a previous seed recorded is kept, not synthesised again: a reading once voted on cannot be replaced, so
    # a second seed must not depend on espeak-ng, soxr and libFLAC giving the same bytes twice.
    recorded = {
        (contributor_id, prompt_id): duration_s
        for contributor_id, prompt_id, duration_s in Clip.objects.filter(
            contributor__in=[contributor for _, contributor in readers]
        ).values_list("contributor_id", "prompt_id", "duration_s")
    }
    with (
        tempfile.TemporaryDirectory(prefix="demo-espeak-") as workdir,
        tqdm(
            total=sum(len(p) for p in plan),
            desc="Recording",
            unit="clip",
            disable=not progress,
            file=sys.stderr,
        ) as bar,
    ):
        for (speaker, contributor), reading in zip(readers, plan, strict=True):
            for prompt_index in reading:
                kept = recorded.get((contributor.pk, prompts[prompt_index].pk))
                if kept is not None:  # an earlier seed's clip (voted on, perhaps valid) is kept as it is
                    clips += 1
                    audio_seconds += kept
                    bar.update(1)
                    continue
                # Keyed by who reads what, so a clip's bytes do not depend on how many others recorded.
                rng = np.random.default_rng([DEMO_SEED, _SPEAKER_KEYS[speaker.username], prompt_index])
                data = demo_recording(
                    text=prompts[prompt_index].text,
                    speaker=speaker,
                    rng=rng,
                    workdir=Path(workdir),
                    espeak=espeak,
                )
                submission = clip_submit(contributor=contributor, prompt_id=prompts[prompt_index].pk, data=data)
                clips += 1
                clips_created += submission.created
                audio_seconds += submission.clip.duration_s
                bar.update(1)

    votes = _seed_votes(out=out)
    voices = CORPUS_VOICES if corpus_speakers is None else CORPUS_VOICES[: max(corpus_speakers, 0)]
    _seed_corpus(prompts, voices, espeak=espeak, out=out)
    if release:
        _seed_release(out=out)
    _seed_admin(out=out)  # last: its account says the seed ran to its end (demo_database_is_empty)

    summary = DemoSummary(
        founders=[s.username for s in FOUNDERS],
        contributors=[s.username for s in speakers],
        prompts=len(prompts),
        prompts_created=prompts_created,
        clips=clips,
        clips_created=clips_created,
        audio_seconds=audio_seconds,
        elapsed_s=time.monotonic() - started,
    )
    out(
        f"Clips: {summary.clips} ({summary.clips_created} new, {summary.audio_seconds / 60:.1f} min of "
        f"audio) from {len(readers)} contributors; {votes} votes cast; "
        f"{Clip.objects.filter(status=ClipStatus.VALID).count()} clips valid; in {summary.elapsed_s:.0f} s."
    )
    out(
        f"Log in as {', '.join(summary.founders)} (founding trustees), {ADMIN_USERNAME} (staff) or any "
        f"demo-* contributor with the password: {DEMO_PASSWORD}"
    )
    return summary


def _seed_votes(*, out: Callable[[str], None]) -> int:
    """Trustees validate through the same assignment and vote services as the page: each takes the clip
    the server hands out and judges it (the demo's clips are all good; a few misjudgements are simulated),
    round after round, until quotas run out or only ``DEMO_PENDING_SHARE`` of the recordings is left
    pending for a visitor. New trustees join as their clips are validated."""
    trust_recompute_all(trigger="demo")  # the founders named above become trustees
    rng = np.random.default_rng([DEMO_SEED, 1])
    pending = Clip.objects.filter(status=ClipStatus.PENDING, status_fixed=False)
    leave = int(DEMO_PENDING_SHARE * pending.count())
    cast = 0
    progress = True
    while progress and pending.count() > leave:
        progress = False
        for trustee in Contributor.objects.filter(is_trustee=True).order_by("id"):
            if pending.count() <= leave:
                break
            offer = validation_assign(trustee=trustee)
            if offer.clip is None:
                continue
            verdict = Verdict.INVALID if rng.random() < DEMO_VOTE_ERROR_RATE else Verdict.VALID
            # Cycled, not drawn: drawing would shift the seeded verdicts that follow.
            reason = InvalidReason.values[cast % len(InvalidReason.values)] if verdict == Verdict.INVALID else ""
            try:
                vote_cast(voter=trustee, clip_id=offer.clip.pk, verdict=verdict, reason=reason)
            except ServiceError:
                continue  # lost trustee status or quota meanwhile: the next round decides again
            cast += 1
            progress = True
    # Granted after the seed, which spends what the founders' recordings earned: whoever logs in as a
    # founder can still validate the clips left pending.
    Contributor.objects.filter(is_founding_trustee=True, user__username__in=[f.username for f in FOUNDERS]).update(
        vote_allowance=DEMO_FOUNDER_ALLOWANCE
    )
    out(f"Votes: {cast} cast by simulated trustees.")
    return cast


DEMO_RELEASE = "demo-1"


def _seed_corpus(
    prompts: Sequence[Prompt], voices: Sequence[DemoSpeaker], *, espeak: str, out: Callable[[str], None]
) -> None:
    """Write the seed corpus as a corpus on disk (FLAC files and a TSV manifest) and import it through the
    import service, validated; a second seed finds every clip already there."""
    from contributors.services.imports import corpus_import, corpus_source_register
    from speech.corpus import MANIFEST_COLUMNS

    if not voices:
        return
    plan = _reading_plan(prompts, speakers=len(voices), each=CORPUS_PROMPTS_EACH, offset=3)[: len(voices)]
    with tempfile.TemporaryDirectory(prefix="demo-corpus-") as workdir:
        root = Path(workdir)
        rows = ["\t".join(MANIFEST_COLUMNS)]
        for speaker, reading in zip(voices, plan, strict=True):
            for prompt_index in reading:
                rng = np.random.default_rng([DEMO_SEED, _SPEAKER_KEYS[speaker.username], prompt_index])
                name = f"{speaker.username}_{prompt_index:03d}.flac"
                text = prompts[prompt_index].text
                (root / name).write_bytes(
                    demo_recording(text=text, speaker=speaker, rng=rng, workdir=root, espeak=espeak)
                )
                age = _AGE_FOR_BAND[speaker.age_band]
                rows.append("\t".join([name[:-5], speaker.username, speaker.gender, str(age), name, "0", text]))
        (root / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        # Generated here from espeak-ng voices, so the platform's own CC0 applies; releases still list it as a
        # source of its own, as they would a real imported corpus.
        source, _ = corpus_source_register(
            name=CORPUS_SOURCE,
            licence="CC0-1.0",
            citation="OpenPhone demo seed corpus: espeak-ng voices reading the demo prompts (demo/seed.py).",
        )
        report = corpus_import(
            manifest=root / "manifest.tsv",
            audio_root=root,
            source=source,
            validated=True,
            accent="",
        )
    out(
        f"Seed corpus: {report.imported} clips imported as validated ({report.already_present} already there) "
        f"from {len(voices)} espeak-ng voices."
        + (f" {len(report.failures)} refused: {report.failures[0][1]}" if report.failures else "")
    )


def _seed_release(*, out: Callable[[str], None]) -> None:
    """Freeze the demo's valid clips into a release through the same service as `release_build`, so the
    releases page has something to show; kept when it already exists."""
    from benchmark.models import Release, ReleaseStatus
    from benchmark.releases.services import release_build, release_create

    if Release.objects.filter(version=DEMO_RELEASE, status=ReleaseStatus.READY).exists():
        out(f"Release {DEMO_RELEASE} already exists.")
        return
    try:
        release = release_create(version=DEMO_RELEASE)
    except ServiceError as exc:
        out(f"No demo release: {exc.message}")
        return
    built = release_build(release_id=release.pk)
    if built is not None and built.status == ReleaseStatus.READY:
        out(f"Release {DEMO_RELEASE}: {built.clip_count} clips from {built.speaker_count} speakers, on /releases/.")
    else:
        out(f"Release {DEMO_RELEASE} failed: {built.error if built else 'row gone'}")


def _seed_prompts() -> tuple[list[Prompt], int]:
    lexicon = lexicon_as_mapping()
    prompts: list[Prompt] = []
    created_count = 0
    for text, prompt_type in DEMO_PROMPTS:
        prompt, created = prompt_create(text=text, prompt_type=prompt_type, source=DEMO_SOURCE, lexicon=lexicon)
        prompts.append(prompt)
        created_count += created
    return prompts, created_count


def _seed_sentences() -> PromptImportReport:
    """The few hundred sentences of contributors/data/sentences.txt, for visitors: the seed's own speakers read
    only DEMO_PROMPTS, so the demo's recordings do not depend on them."""
    report = prompts_import(path=SENTENCES_PATH, prompt_type=PromptType.DIVERSE, source=SENTENCES_SOURCE)
    if report.failures:
        number, reason = report.failures[0]
        raise ServiceError("demo_sentences_invalid", f"{SENTENCES_PATH}:{number}: {reason}")
    return report


def _seed_account(speaker: DemoSpeaker, *, founding_trustee: bool, out: Callable[[str], None]) -> Contributor:
    """Sign the speaker up, consenting; an existing account of that name is used as it is (a previous
    seed made it, or its owner did: either way its password and roles are not touched)."""
    existing = get_user_model().objects.filter(username__iexact=speaker.username).first()
    if existing is not None:
        contributor = contributor_for_user(existing)
        if founding_trustee and not contributor.is_founding_trustee:
            out(f"{speaker.username} already exists and is not a founding trustee; left as it is.")
        return contributor
    young = speaker.age_band in ("0-12", "13-17")
    with transaction.atomic():
        contributor = contributor_signup(
            username=speaker.username,
            password=DEMO_PASSWORD,
            email=f"{speaker.username}@example.org",
            cc0_consent=True,
            # The demo's young voices: a guardian agreed, and gave the address the project would reach them at.
            guardian_consent=young,
            guardian_email=f"guardian-of-{speaker.username}@example.org" if young else "",
            age_band=speaker.age_band,
            gender=speaker.gender,
            accent=speaker.accent,
            first_language=speaker.first_language,
        )
        if founding_trustee:
            contributor.is_founding_trustee = True
            contributor.save(update_fields=["is_founding_trustee"])
    return contributor


def _seed_admin(*, out: Callable[[str], None]) -> None:
    User = get_user_model()
    if User.objects.filter(username__iexact=ADMIN_USERNAME).exists():
        out(f"{ADMIN_USERNAME} already exists; its password is unchanged.")
        return
    User.objects.create_superuser(
        username=ADMIN_USERNAME, email=f"{ADMIN_USERNAME}@example.org", password=DEMO_PASSWORD
    )


def _reading_plan(
    prompts: Sequence[Prompt], *, speakers: int, each: int = SIMULATED_PROMPTS_EACH, offset: int = 0
) -> list[list[int]]:
    """Prompt indices per reader, simulated contributors first, then founders. Each simulated contributor
    reads every shared prompt and the next few of a seeded shuffle of the others; the founders read from
    the far end of that shuffle, so their readings do not depend on how many simulated contributors
    there are, and the full demo covers every sentence."""
    shared = [i for i, p in enumerate(prompts) if p.prompt_type == PromptType.SHARED]
    others = [i for i, p in enumerate(prompts) if p.prompt_type != PromptType.SHARED]
    order = [others[i] for i in np.random.default_rng(DEMO_SEED).permutation(len(others))]

    def window(start: int, n: int) -> list[int]:
        return [order[(start + k) % len(order)] for k in range(min(n, len(order)))]

    plan = [shared + window(offset + i * each, each) for i in range(speakers)]
    plan += [window(-(i + 1) * FOUNDER_PROMPTS_EACH, FOUNDER_PROMPTS_EACH) for i in range(len(FOUNDERS))]
    return plan


def demo_recording(
    *, text: str, speaker: DemoSpeaker, rng: np.random.Generator, workdir: Path, espeak: str = ESPEAK
) -> bytes:
    """One upload as the speaker's browser would send it: espeak-ng speech with some room tone before
    and after, a level of its own and low noise throughout (never digital silence)."""
    wav = workdir / "speech.wav"
    voice = ["-v", speaker.voice, "-p", str(speaker.pitch), "-s", str(speaker.speed)]
    subprocess.run(
        [espeak, *voice, "-w", str(wav), "--", text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    speech, rate = sf.read(wav, dtype="float64", always_2d=False)
    lead = np.zeros(int(rng.uniform(0.25, 0.6) * rate))
    tail = np.zeros(int(rng.uniform(0.3, 0.8) * rate))
    peak = float(np.max(np.abs(speech))) or 1.0
    audio = np.concatenate([lead, speech * (10 ** (rng.uniform(-10.0, -3.0) / 20) / peak), tail])
    # Room tone: white noise smoothed a little (rooms are darker than white), at -62..-50 dBFS RMS.
    noise = np.convolve(rng.standard_normal(audio.shape[0] + 3), np.ones(4) / 4, mode="valid")
    noise *= 10 ** (rng.uniform(-62.0, -50.0) / 20) / np.sqrt(np.mean(noise**2))
    audio = (audio + noise).astype(np.float32)
    return _encode(audio, rate, speaker.upload, rng)


def _encode(audio: np.ndarray, rate: int, upload: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    if upload == "wav":
        sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    elif upload == "flac":
        sf.write(buffer, audio, rate, format="FLAC", subtype="PCM_16")
    elif upload == "wav16":
        sf.write(buffer, soxr.resample(audio, rate, 16_000), 16_000, format="WAV", subtype="PCM_16")
    elif upload == "wav48":
        # A stereo interface: the same voice on both channels, the right one a little quieter and
        # with its own self-noise.
        left = soxr.resample(audio, rate, 48_000)
        right = 0.9 * left + rng.normal(0.0, 2e-4, left.shape[0]).astype(np.float32)
        sf.write(buffer, np.stack([left, right], axis=1), 48_000, format="WAV", subtype="PCM_16")
    elif upload == "flac44":  # uploads are lossless (contributors.audio.ACCEPTED_FORMATS): no Ogg Vorbis
        sf.write(buffer, soxr.resample(audio, rate, 44_100), 44_100, format="FLAC", subtype="PCM_16")
    else:
        raise ValueError(f"unknown upload format {upload!r}")
    return buffer.getvalue()
