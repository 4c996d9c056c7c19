"""factory_boy factories for the tests, and audio made on the fly (no audio is committed)."""

from __future__ import annotations

import functools
import hashlib
import io
from datetime import timedelta

import factory
import numpy as np
import soundfile as sf
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import identify_hasher, make_password
from django.db.models import Q
from django.utils import timezone

from contributors.models import (
    AssignmentOutcome,
    Clip,
    ClipStatus,
    Contributor,
    Prompt,
    PromptType,
    Provenance,
    ValidationAssignment,
)

TEST_PASSWORD = "a-long-test-password"


def _test_password_hash() -> str:
    """Hashed once per run and hasher setting: the production hasher takes about half a second per account,
    which made hashing the slowest part of every test that creates a few contributors. Keyed by the setting, as a
    hash made under a test's fast MD5 setting does not verify under the default hashers (it broke the
    password logins of later tests in the same worker)."""
    return _hash_under(tuple(settings.PASSWORD_HASHERS))


@functools.cache
def _hash_under(hashers: tuple[str, ...]) -> str:
    return make_password(TEST_PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyFunction(_test_password_hash)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """A password given in clear (``user__password="..."``) is hashed, as factory_boy's Password does."""
        try:
            identify_hasher(kwargs["password"])
        except ValueError:
            kwargs["password"] = make_password(kwargs["password"])
        return super()._create(model_class, *args, **kwargs)


class ContributorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contributor

    user = factory.SubFactory(UserFactory)
    cc0_consent_at = factory.LazyFunction(timezone.now)


class FounderFactory(ContributorFactory):
    """A founding trustee as the engine leaves one: trust 1, trustee."""

    is_founding_trustee = True
    is_trustee = True
    trust = 1.0


def assign(trustee, clip, *, ttl_s: float = 600) -> ValidationAssignment:
    """The open assignment ``validation/next`` would have recorded, for a test that must act on one chosen
    clip (the queue picks at random); closes the trustee's other open assignment, as the queue does, and
    another trustee's open assignment on the clip (one holder per clip)."""
    now = timezone.now()
    ValidationAssignment.objects.filter(Q(trustee=trustee) | Q(clip=clip), outcome=AssignmentOutcome.OPEN).update(
        outcome=AssignmentOutcome.WITHDRAWN, closed_at=now
    )
    return ValidationAssignment.objects.create(trustee=trustee, clip=clip, expires_at=now + timedelta(seconds=ttl_s))


def vote_on(voter, clip, verdict: str = "valid", reason: str | None = None):
    """Assign ``clip`` to ``voter`` and cast the vote through the service (an invalid verdict says
    "noise" unless ``reason`` is given)."""
    from contributors.services.votes import vote_cast

    assign(voter, clip)
    if reason is None:
        reason = "noise" if verdict == "invalid" else ""
    return vote_cast(voter=voter, clip_id=clip.pk, verdict=verdict, reason=reason)


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    text = factory.Sequence(lambda n: f"prompt number {n}")
    normalised_text = factory.LazyAttribute(lambda o: o.text.lower())
    words = factory.LazyAttribute(lambda o: o.text.lower().split())
    phones = factory.LazyAttribute(lambda o: [["P"] for _ in o.text.split()])
    prompt_type = PromptType.DIVERSE


class ClipFactory(factory.django.DjangoModelFactory):
    """A clip row in the state ``clip_submit`` leaves a new recording in, without audio: tests of the trust engine
    need crowds of clips, not their sound, and an upload normalises, hashes and stores a file per clip (most of the
    time of the trust property test went there). The row names a FLAC that is not in storage, and its measurements
    are those of the 1.1 s ``speechlike`` take as normalised; a test that reads audio uploads it.

    Created as the upload creates it: under the trust lock, with the upload's trust bookkeeping for its author
    (``trust_after_submission``: under the ``proposal`` preset a new pending clip dilutes its author's trust).
    tests/contributors/test_trust_services.py compares a factory clip with an uploaded one, field by field."""

    class Meta:
        model = Clip

    contributor = factory.SubFactory(ContributorFactory)
    prompt = factory.SubFactory(PromptFactory)
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"factory clip {n}".encode()).hexdigest())
    audio = factory.LazyAttribute(lambda o: f"clips/{o.sha256[:2]}/{o.sha256}.flac")
    duration_s = 1.1
    original_format = "WAV/PCM_16"
    original_sample_rate = 16_000
    original_channels = 1
    original_bytes = 35_244
    rms_dbfs = -22.03
    peak_dbfs = -9.89
    clipping_ratio = 0.0
    provenance = Provenance.RECORDED
    status = ClipStatus.PENDING
    # A status given at creation (an import) is fixed, as clip_submit fixes it.
    status_fixed = factory.LazyAttribute(lambda o: o.status != ClipStatus.PENDING)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from contributors.services.trust import trust_after_submission, trust_write

        def store(exclusive: bool) -> Clip:
            clip = model_class.objects.create(*args, **kwargs)
            if not clip.status_fixed:
                trust_after_submission(contributor=clip.contributor, exclusive=exclusive)
            return clip

        return trust_write(store)


def recorded_clips(contributor, n: int = 1) -> list[Clip]:
    """``n`` new pending clips by ``contributor``, each of its own prompt, as ``n`` uploads leave them."""
    return [ClipFactory(contributor=contributor) for _ in range(n)]


def speechlike(seconds: float = 2.0, rate: int = 16_000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-rate modulated signal with a little noise: passes every quality check."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2
    signal = 0.2 * voice * envelope + 0.003 * rng.standard_normal(t.shape)
    signal = signal.astype(np.float32)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def wav_bytes(samples: np.ndarray, rate: int = 16_000, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def near_silence(seconds: float = 3.5, speech_s: float = 0.24, dbfs: float = -54.0, rate: int = 16_000) -> np.ndarray:
    """The issue's take that went to validators: ``speech_s`` of speech-like sound in faint room noise, the
    whole at ``dbfs`` RMS (above the silence check), speech ratio about 0.05."""
    rng = np.random.default_rng(1)
    take = 0.02 * rng.standard_normal(int(seconds * rate))
    burst = speechlike(speech_s + 0.1, rate=rate)[: int(speech_s * rate)]
    start = int(1.2 * rate)
    take[start : start + burst.size] += 10 * burst
    take *= 10 ** (dbfs / 20) / np.sqrt(np.mean(take**2))
    return take.astype(np.float32)
