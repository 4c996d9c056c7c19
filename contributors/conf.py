"""The contributors app's settings, read through one object with documented defaults."""

from __future__ import annotations

from django.conf import settings

from contributors.audio import ClipLimits
from contributors.sentences import SentenceRules
from speech.trust import TrustParams


def clip_limits() -> ClipLimits:
    """ClipLimits from settings.CLIP_LIMITS; unknown keys are an error, missing ones take defaults."""
    overrides = {key.lower(): value for key, value in getattr(settings, "CLIP_LIMITS", {}).items()}
    return ClipLimits(**overrides)


def trust_params() -> TrustParams:
    """TrustParams from settings.TRUST (keys as in the dataclass, upper case)."""
    overrides = {key.lower(): value for key, value in getattr(settings, "TRUST", {}).items()}
    return TrustParams(**overrides)


def sentence_rules() -> SentenceRules:
    """SentenceRules from settings.SENTENCES (keys as in the dataclass, upper case)."""
    overrides = {key.lower(): value for key, value in getattr(settings, "SENTENCES", {}).items()}
    return SentenceRules(**overrides)
