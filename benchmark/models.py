"""Corpus releases (the release row, its published files, the speakers' persistent splits) and the leaderboard's
submissions with their results per release."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$"


class ReleaseStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    # Taken down by an operator (benchmark.releases.services.release_withdraw): no longer listed, served or
    # offered to new submissions and runs; its files and rows are kept, as the record of what was published.
    WITHDRAWN = "withdrawn", "Withdrawn"


class Release(models.Model):
    """An immutable corpus release. Its frozen JSONL manifest (``manifest_path`` in storage) is the source of
    truth every export was written from; ``facts`` holds the datasheet's numbers."""

    version = models.CharField(
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(VERSION_PATTERN, "Letters, digits, '.', '_' and '-', starting with one of the first two.")
        ],
    )
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.BUILDING)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker claimed the build; empty while it waits for one."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The building worker's last sign of life; a stale one is reaped."
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Builds started since the release was (re)created; bounded by RELEASE_MAX_ATTEMPTS."
    )
    # The fencing token of the current claim (core.fencing). ``attempts`` cannot be it: building a failed version
    # again resets that count, and a superseded worker's number would come round again.
    claims = models.PositiveIntegerField(
        default=0,
        help_text="Times a build was claimed or taken from a silent worker, never reset; the latest claim alone "
        "may write.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Take at most this many clips (tests).")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    clip_count = models.PositiveIntegerField(default=0, help_text="Public and hidden clips.")
    speaker_count = models.PositiveIntegerField(default=0)
    hours = models.FloatField(default=0.0)
    facts = models.JSONField(default=dict, blank=True, help_text="The datasheet's numbers.")
    manifest_path = models.CharField(max_length=255, blank=True, help_text="Public JSONL manifest in storage.")
    hidden_manifest_path = models.CharField(
        max_length=255, blank=True, help_text="The hidden split's manifest; private storage, never served."
    )
    build_seconds = models.FloatField(null=True, blank=True)
    hmm = models.CharField(
        max_length=255,
        blank=True,
        help_text="The monophone HMM that aligned it, in private storage: the next release's aligner starts from it.",
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True, help_text="When an operator withdrew it.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ReleaseStatus.values), name="release_status_known"),
        ]

    def __str__(self) -> str:
        return f"release {self.version} ({self.status})"

    @property
    def storage_prefix(self) -> str:
        return f"releases/{self.version}"

    @property
    def private_prefix(self) -> str:
        return f"private/releases/{self.version}"


class ReleaseFile(models.Model):
    """A published file of a ready release; only files with a row can be downloaded."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255, help_text="Relative to the release root, e.g. kaldi/train/text.")
    storage_name = models.CharField(max_length=300)
    split = models.CharField(max_length=8, blank=True, help_text="Empty for files about the whole release.")
    format = models.CharField(max_length=16)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["release", "path"], name="release_file_unique_path")]
        indexes = [models.Index(fields=["release", "format", "split"])]

    def __str__(self) -> str:
        return f"{self.release.version}/{self.path}"


class SpeakerSplit(models.Model):
    """The split a speaker was given by the first release they appeared in; every later release keeps it."""

    speaker_id = models.CharField(max_length=20, unique=True)
    split = models.CharField(max_length=8)
    first_release = models.ForeignKey(Release, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["speaker_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(split__in=["train", "dev", "test", "hidden"]), name="speaker_split_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.speaker_id}: {self.split}"


# --- the leaderboard: submissions and their results ----------------------------------------------------------------
class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SubmissionDecoder(models.TextChoices):
    """The platform's published decoders (speech.decoding): frame argmax with repeats collapsed and
    silence (and the CTC blank) dropped, or Viterbi through 3-state phone HMMs with the release's phone bigram."""

    GREEDY = "greedy", "Greedy (40 classes: 39 phones + sil)"
    GREEDY_CTC = "greedy_ctc", "Greedy CTC (41 classes: 39 phones + sil + blank last)"
    HMM_BIGRAM = "hmm_bigram", "HMM/bigram Viterbi (40 classes: 39 phones + sil)"


def submission_upload_to(instance: Submission, filename: str) -> str:
    return f"submissions/{instance.uuid}.onnx"


class Submission(models.Model):
    """One ONNX model sent to the leaderboard; the platform's baselines are submissions too (``is_baseline``)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    submitter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    release = models.ForeignKey(
        Release,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submissions",
        help_text="The release its first evaluation ran on.",
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=5000)
    url = models.URLField(blank=True, help_text="A paper, repository or model card.")
    file = models.FileField(upload_to=submission_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    decoder = models.CharField(max_length=16, choices=SubmissionDecoder.choices, default=SubmissionDecoder.GREEDY)
    status = models.CharField(max_length=10, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(
        blank=True, help_text="What the submitter reads: a fixed sentence per code (details only for public probes)."
    )
    failure_detail = models.TextField(
        blank=True, help_text="Operators only (admin): the full detail, which may name hidden utterances."
    )
    is_baseline = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker claimed the evaluation.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The evaluating worker's last sign of life; a stale one is reaped."
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Evaluations started (re-queued ones count).")
    # The fencing token of the current claim (core.fencing). ``attempts`` cannot be it: an operator's re-run resets
    # that count, and a superseded worker's number would come round again.
    claims = models.PositiveIntegerField(
        default=0,
        help_text="Times a worker claimed the evaluation, never reset; the worker of the latest claim alone may write.",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=SubmissionStatus.values), name="submission_status_known"),
            models.CheckConstraint(condition=Q(decoder__in=SubmissionDecoder.values), name="submission_decoder_known"),
        ]
        indexes = [models.Index(fields=["submitter", "created_at"])]

    def __str__(self) -> str:
        return f"submission {self.pk} {self.name!r} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (SubmissionStatus.SUCCEEDED, SubmissionStatus.FAILED, SubmissionStatus.CANCELLED)


class SubmissionResult(models.Model):
    """A submission's evaluation on one release: a new release re-evaluates every succeeded submission. A
    re-evaluation holds its row while it runs (``succeeded`` null) and beats ``heartbeat_at`` there, as a first
    evaluation does on its submission, so that the reaper recovers it when its worker dies."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="submission_results")
    succeeded = models.BooleanField(null=True, default=True, help_text="Empty while a re-evaluation runs.")
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    failure_detail = models.TextField(blank=True, help_text="Operators only (admin).")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker claimed the re-evaluation.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="The re-evaluating worker's last sign of life; a stale one is reaped."
    )
    # Never reset: also the fencing token of the re-evaluation's current claim (core.fencing).
    attempts = models.PositiveSmallIntegerField(
        default=0,
        help_text="Re-evaluations started (recovered ones count); the worker of the latest alone may write.",
    )
    # The ranked split (hidden, or the public test split on a release without one: its board is not blind): PER
    # on the 39 phones (silence not scored), with its counts. ``per_hidden`` stays empty on a board not blind.
    per_hidden = models.FloatField(null=True, blank=True)
    reference_phones = models.PositiveIntegerField(default=0, help_text="N: reference phones scored.")
    substitutions = models.PositiveIntegerField(default=0)
    deletions = models.PositiveIntegerField(default=0)
    insertions = models.PositiveIntegerField(default=0)
    utterances = models.PositiveIntegerField(default=0)
    frames = models.PositiveBigIntegerField(default=0)
    # Public test split, for comparison with what researchers measure themselves.
    per_public = models.FloatField(null=True, blank=True)
    public_reference_phones = models.PositiveIntegerField(default=0)
    # The model itself.
    parameters = models.PositiveBigIntegerField(null=True, blank=True)
    depth = models.PositiveIntegerField(null=True, blank=True, help_text="Weight layers on the longest path.")
    macs_per_second = models.PositiveBigIntegerField(null=True, blank=True)
    rtf_median = models.FloatField(null=True, blank=True)
    rtf_min = models.FloatField(null=True, blank=True)
    rtf_max = models.FloatField(null=True, blank=True)
    isolation = models.CharField(max_length=32, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Wall-clock time of the evaluation.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["per_hidden", "id"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "release"], name="submission_result_unique_release"),
        ]

    def __str__(self) -> str:
        return f"{self.submission_id} on {self.release_id}: PER {self.per_hidden}"
