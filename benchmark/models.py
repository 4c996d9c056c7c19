"""Corpus releases: the release row, its published files, and the speakers' persistent splits."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$"


class ReleaseStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


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
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker claimed the build.")
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
