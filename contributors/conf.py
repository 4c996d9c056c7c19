"""The contributors app's settings, read through one object with documented defaults."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

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


def contributors_settings_check(**kwargs) -> list[checks.CheckMessage]:
    """Registered in ContributorsConfig.ready(): an unknown key or an impossible value in CLIP_LIMITS, TRUST or
    SENTENCES fails ``manage.py check`` and every process's start, not the first upload or vote."""
    problems: list[checks.CheckMessage] = []
    for name, read in (("CLIP_LIMITS", clip_limits), ("TRUST", trust_params), ("SENTENCES", sentence_rules)):
        try:
            read()
        except (TypeError, ValueError) as exc:
            problems.append(checks.Error(f"{name}: {exc}", obj=name, id="contributors.E001"))
    return problems
