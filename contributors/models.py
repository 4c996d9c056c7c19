"""Contributors, prompts, clips and votes: the crowd's side of the corpus."""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_speaker_id() -> str:
    """A pseudonymous speaker id that says nothing about the person: 'spk-' + 50 random bits."""
    return "spk-" + base64.b32encode(secrets.token_bytes(5)).decode().lower()


def new_queue_key() -> float:
    """A uniform draw in [0, 1): the clip's place in the validation queue's random order."""
    return secrets.randbits(53) / 2**53


class AgeBand(models.TextChoices):
    CHILD = "0-12", "12 or under"
    TEEN = "13-17", "13 to 17"
    A18 = "18-29", "18 to 29"
    A30 = "30-44", "30 to 44"
    A45 = "45-59", "45 to 59"
    A60 = "60+", "60 or over"


class Gender(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"


class Contributor(models.Model):
    """A person who records (and, once trusted, validates); 1:1 with the login user."""

    # Null once the account is deleted (contributors.services.own_data): the row stays, anonymised, so that the
    # votes cast and the speaker id of published releases keep meaning what they did.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="contributor"
    )
    speaker_id = models.CharField(max_length=20, unique=True, default=new_speaker_id, editable=False)
    # Every demographic field is optional; an empty string means "not given".
    age_band = models.CharField(max_length=8, choices=AgeBand.choices, blank=True)
    gender = models.CharField(max_length=8, choices=Gender.choices, blank=True)
    accent = models.CharField(max_length=64, blank=True, help_text="Accent or dialect region, free text.")
    first_language = models.CharField(max_length=64, blank=True)
    cc0_consent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the contributor dedicated their recordings to CC0."
    )
    guardian_consent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a parent or legal guardian agreed to a contributor under 18 publishing recordings.",
    )
    guardian_email = models.EmailField(
        blank=True,
        help_text="The parent's or legal guardian's e-mail, given with their agreement (contributors under 18).",
    )
    is_founding_trustee = models.BooleanField(default=False)
    vote_allowance = models.PositiveIntegerField(
        default=0,
        help_text="Votes an operator grants on top of the quota earned by recording (founders seeding a crowd).",
    )
    # Kept by the trust engine (contributors.services.trust); never edited by hand.
    trust = models.FloatField(
        default=0.0, help_text="Wilson lower bound of valid among decided clips (the preset's rule); 1 for founders."
    )
    is_trustee = models.BooleanField(default=False, db_index=True)
    trustee_notice_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the contributor was told they had become a trustee (told once, on their next page).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the person deleted their account: login and profile gone, clips withdrawn.",
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.user.get_username() if self.user else '(deleted)'} ({self.speaker_id})"

    @property
    def has_consented(self) -> bool:
        return self.cc0_consent_at is not None

    @property
    def is_minor(self) -> bool:
        return self.age_band in (AgeBand.CHILD, AgeBand.TEEN)


class PromptType(models.TextChoices):
    SHARED = "shared", "Shared (read by everyone)"
    COVERAGE = "coverage", "Coverage (chosen for diphone coverage)"
    DIVERSE = "diverse", "Diverse"


class Prompt(models.Model):
    """A sentence to read, with the words a reader says and their canonical phones."""

    text = models.TextField(help_text="As shown to the reader.")
    normalised_text = models.CharField(max_length=1000, unique=True, editable=False)
    words = models.JSONField(default=list, help_text="Lower-case words, numbers spelled out.")
    phones = models.JSONField(default=list, help_text="One list of ARPAbet phones (no stress) per word.")
    prompt_type = models.CharField(max_length=10, choices=PromptType.choices, default=PromptType.DIVERSE)
    is_active = models.BooleanField(default=True)
    # Set when readers' reports reach settings.SENTENCES["REPORTS_TO_HOLD"]; an operator clears it (dismiss) or
    # retires the prompt. Not served meanwhile.
    held_for_review = models.BooleanField(default=False, db_default=False)
    source = models.CharField(max_length=64, blank=True, help_text="Where the sentence came from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["is_active", "prompt_type"])]

    def __str__(self) -> str:
        return self.text[:80]

    @property
    def phone_string(self) -> str:
        return " ".join(" ".join(word) for word in self.phones)


class LexiconEntry(models.Model):
    """An operator's pronunciation for a word CMUdict lacks or gets wrong; it wins over CMUdict."""

    word = models.CharField(max_length=100, unique=True)
    phones = models.JSONField(help_text="ARPAbet phones without stress.")
    source = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["word"]
        verbose_name_plural = "lexicon entries"

    def __str__(self) -> str:
        return f"{self.word}: {' '.join(self.phones)}"


class ClipStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    DISCARDED = "discarded", "Discarded"


class Provenance(models.TextChoices):
    RECORDED = "recorded", "Recorded on the platform"
    IMPORTED = "imported", "Imported from an existing corpus"


# Clips recorded on the platform have no CorpusSource: they are the platform's own, under CC0.
PLATFORM_SOURCE = "openphone"
PLATFORM_LICENCE = "CC0-1.0"


class CorpusSource(models.Model):
    """An existing corpus that clips were imported from: its name, licence (SPDX id, one of core.licences), where
    it is published and how to cite it. Every imported clip names one; a release credits each with its count."""

    name = models.CharField(max_length=64, unique=True, help_text="Short name, as releases list it.")
    licence = models.CharField(max_length=64, help_text="SPDX id of the corpus's licence (core.licences).")
    url = models.URLField(max_length=500, blank=True)
    citation = models.TextField(help_text="How the corpus asks to be cited (BibTeX or plain text).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.licence})"


class Clip(models.Model):
    """One reading of one prompt: 16 kHz mono FLAC in storage, named by its sha256."""

    contributor = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="clips")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="clips")
    audio = models.FileField(max_length=255)
    sha256 = models.CharField(max_length=64, unique=True, help_text="Of the normalised FLAC file.")
    duration_s = models.FloatField()
    original_format = models.CharField(max_length=32, help_text="Container/encoding as uploaded.")
    original_sample_rate = models.PositiveIntegerField()
    original_channels = models.PositiveSmallIntegerField()
    original_bytes = models.PositiveIntegerField()
    rms_dbfs = models.FloatField()
    peak_dbfs = models.FloatField()
    clipping_ratio = models.FloatField()
    speech_ratio = models.FloatField(null=True, blank=True, help_text="Set by the analysis task.")
    snr_db = models.FloatField(null=True, blank=True, help_text="Set by the analysis task.")
    analysed_at = models.DateTimeField(null=True, blank=True)
    # A clip whose analysis keeps failing is given up after contributors.services.clips.ANALYSIS_MAX_ATTEMPTS
    # claims (a worker killed mid-analysis counts too), instead of being re-enqueued every sweep forever.
    analysis_attempts = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="Times a worker started its analysis."
    )
    analysis_error = models.CharField(
        max_length=500, blank=True, db_default="", help_text="Why the last analysis failed."
    )
    status = models.CharField(max_length=10, choices=ClipStatus.choices, default=ClipStatus.PENDING)
    score = models.FloatField(default=0.0, help_text="Wilson lower bound of the counted valid votes.")
    votes_counted = models.PositiveIntegerField(default=0, help_text="Votes of current trustees.")
    votes_valid_counted = models.PositiveIntegerField(default=0)
    status_fixed = models.BooleanField(
        default=False, help_text="Imported with a known status that votes do not change (import --validated)."
    )
    provenance = models.CharField(max_length=10, choices=Provenance.choices, default=Provenance.RECORDED)
    source = models.ForeignKey(
        CorpusSource,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="clips",
        help_text="The corpus an imported clip came from; empty for a clip recorded on the platform.",
    )
    withdrawn_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Withdrawn by its author: audio deleted, status fixed to discarded, out of every future release.",
    )
    # A random position in the validation queue, drawn once: an index walk from a random point picks a
    # random clip among the most-voted without sorting them all by random() per request.
    queue_key = models.FloatField(default=new_queue_key, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["contributor", "prompt"], name="clip_one_per_contributor_prompt"),
            models.CheckConstraint(condition=Q(duration_s__gt=0), name="clip_duration_positive"),
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=1), name="clip_score_in_unit"),
            models.CheckConstraint(condition=Q(status__in=ClipStatus.values), name="clip_status_known"),
            # Provenance per clip: an imported clip names its corpus (and so its licence), a recorded one none.
            models.CheckConstraint(
                condition=(Q(provenance=Provenance.RECORDED) & Q(source__isnull=True))
                | (Q(provenance=Provenance.IMPORTED) & Q(source__isnull=False)),
                name="clip_source_iff_imported",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["status", "votes_counted", "queue_key"], name="clip_validation_queue"),
        ]

    def __str__(self) -> str:
        return f"clip {self.pk} by {self.contributor.speaker_id}"


class Verdict(models.TextChoices):
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


class InvalidReason(models.TextChoices):
    """Why a trustee calls a clip invalid: asked with every "invalid" vote, summarised in the datasheet."""

    WRONG_SENTENCE = "wrong_sentence", "Wrong sentence"
    NOISE = "noise", "Noise"
    CUT_OFF = "cut_off", "Cut off"
    NOT_SPEECH = "not_speech", "Not speech"


class Vote(models.Model):
    """A trustee's verdict on a clip; one per (clip, voter), never on one's own clip. An "invalid" vote
    carries its reason (required by the vote service; votes cast before reasons were asked have none);
    a "valid" vote never has one."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="votes_cast")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    reason = models.CharField(
        max_length=16,
        blank=True,
        default="",
        db_default="",
        choices=InvalidReason.choices,
        help_text='Why the clip is invalid; empty on a "valid" vote.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["clip", "voter"], name="vote_one_per_clip_voter"),
            models.CheckConstraint(condition=Q(verdict__in=Verdict.values), name="vote_verdict_known"),
            models.CheckConstraint(
                condition=Q(reason="") | Q(verdict=Verdict.INVALID, reason__in=InvalidReason.values),
                name="vote_reason_only_invalid_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter.speaker_id} says {self.verdict} on clip {self.clip_id}"


class ClipSkip(models.Model):
    """A trustee passed on a clip; it is not offered to them again."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="skips")
    contributor = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="skips")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clip", "contributor"], name="skip_one_per_clip_contributor")]

    def __str__(self) -> str:
        return f"{self.contributor.speaker_id} skipped clip {self.clip_id}"


class ReportReason(models.TextChoices):
    WRONG_TEXT = "wrong_text", "Does not match the prompt"
    OFFENSIVE = "offensive", "Offensive content"
    PERSONAL = "personal", "Contains personal information"
    NOISE = "noise", "Noise or bad quality"
    OTHER = "other", "Other"


class ClipReport(models.Model):
    """A trustee flagged a clip for an operator; it is not offered to them again."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=16, choices=ReportReason.choices)
    note = models.TextField(blank=True, max_length=1000)
    resolved = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clip", "reporter"], name="report_one_per_clip_reporter")]

    def __str__(self) -> str:
        return f"clip {self.clip_id} reported as {self.reason}"


class TrustRecompute(models.Model):
    """One full recompute of the trust engine, kept so operators can see what changed and when."""

    started_at = models.DateTimeField(auto_now_add=True)
    seconds = models.FloatField()
    iterations = models.PositiveIntegerField()
    cycle_resolved = models.BooleanField(default=False)
    capped = models.BooleanField(default=False)
    clips_changed = models.PositiveIntegerField()
    contributors_changed = models.PositiveIntegerField()
    trustees = models.PositiveIntegerField()
    trigger = models.CharField(max_length=32, help_text="command, periodic, trustee_change, founders, ...")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"trust recompute at {self.started_at:%Y-%m-%d %H:%M} ({self.trigger})"


class AssignmentOutcome(models.TextChoices):
    OPEN = "open", "Open"
    VOTED = "voted", "Voted"
    SKIPPED = "skipped", "Skipped"
    REPORTED = "reported", "Reported"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn (the clip was decided or the trustee lost the status)"


class ValidationAssignment(models.Model):
    """The server handed ``clip`` to ``trustee`` to judge until ``expires_at``: the only clip they may vote
    on, skip, report or hear while it is pending. At most one is open per trustee, and one per clip."""

    trustee = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="assignments")
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="assignments")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=AssignmentOutcome.choices, default=AssignmentOutcome.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["trustee"], condition=Q(outcome="open"), name="assignment_one_open_per_trustee"
            ),
            # One holder per clip: two trustees whose picks race cannot both be handed the same clip.
            models.UniqueConstraint(fields=["clip"], condition=Q(outcome="open"), name="assignment_one_open_per_clip"),
            models.CheckConstraint(condition=Q(outcome__in=AssignmentOutcome.values), name="assignment_outcome_known"),
        ]

    def __str__(self) -> str:
        return f"clip {self.clip_id} assigned to {self.trustee.speaker_id} ({self.outcome})"


class TrustState(models.Model):
    """One row: whether the stored statuses and trust are a fixed point that a full recompute reproduces.

    False until the first recompute (a database from before this engine, or a fresh one), and after a
    recompute that resolved a cycle or stopped at the cap: then the incremental path proves nothing and
    every vote hands over to the full recompute until the state is exact again."""

    exact = models.BooleanField(default=False)
    recomputed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"trust state ({'exact' if self.exact else 'not exact'})"


class PromptReportReason(models.TextChoices):
    OFFENSIVE = "offensive", "Offensive"
    MISSPELT = "misspelt", "Misspelt or ungrammatical"
    HARD_TO_READ = "hard_to_read", "Hard to read aloud"
    NOT_ENGLISH = "not_english", "Not English"
    OTHER = "other", "Other (say why)"


class ReportResolution(models.TextChoices):
    OPEN = "", "Open"
    DISMISSED = "dismissed", "Dismissed (the prompt stays)"
    RETIRED = "retired", "Prompt retired"


class PromptReport(models.Model):
    """A reader flagged a sentence for the operators while recording; it is not offered to them again."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="prompt_reports")
    reason = models.CharField(max_length=16, choices=PromptReportReason.choices)
    note = models.TextField(blank=True, max_length=500)
    resolution = models.CharField(max_length=16, choices=ReportResolution.choices, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "reporter"], name="prompt_report_one_per_reporter"),
        ]
        indexes = [models.Index(fields=["resolution", "prompt"])]

    def __str__(self) -> str:
        return f"prompt {self.prompt_id} reported as {self.reason}"


class PromptSkip(models.Model):
    """A reader passed on a sentence; it is not offered to them again (nobody else is affected)."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="skips")
    contributor = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="prompt_skips")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "contributor"], name="prompt_skip_one_per_contributor"),
        ]

    def __str__(self) -> str:
        return f"{self.contributor.speaker_id} skipped prompt {self.prompt_id}"


class ProposalStatus(models.TextChoices):
    OPEN = "open", "In review"
    ACCEPTED = "accepted", "Accepted (now a prompt)"
    REJECTED = "rejected", "Rejected"


class SentenceProposal(models.Model):
    """A sentence a volunteer wrote for others to read; trustees review it before it becomes a prompt."""

    author = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="proposals")
    text = models.TextField()
    normalised_text = models.CharField(max_length=1000)
    words = models.JSONField(default=list)
    phones = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.OPEN)
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Two people proposing the same sentence at once: one proposal, the other refused as a duplicate.
            models.UniqueConstraint(
                fields=["normalised_text"], condition=Q(status="open"), name="proposal_one_open_per_sentence"
            ),
        ]
        indexes = [models.Index(fields=["author", "created_at"]), models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return self.text[:80]


class ProposalReview(models.Model):
    """A trustee's verdict on someone else's proposal."""

    proposal = models.ForeignKey(SentenceProposal, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="proposal_reviews")
    approve = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "reviewer"], name="proposal_review_one_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer.speaker_id} {'approves' if self.approve else 'rejects'} proposal {self.proposal_id}"
