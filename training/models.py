"""Training runs: one recipe trained on one release by a worker on the gpu queue, with its progress, curves and
artefacts. The science is in training.ml; this row is what the queue, the pages and the leaderboard share."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class TrainingRecipe(models.TextChoices):
    TEACHER_DNN = "teacher-dnn", "Deep MLP teacher"
    TEACHER_CNN = "teacher-cnn", "Convolutional teacher"
    ENSEMBLE = "ensemble", "Ensemble of teachers"
    SNN_LABELS = "snn-labels", "Shallow net on labels"
    MIMIC = "mimic", "Shallow mimic of a teacher"
    TEACHER_BLSTM = "teacher-blstm", "BiLSTM teacher (frame targets)"
    BLSTM_CTC = "blstm-ctc", "BiLSTM-CTC peer (canonical phones)"


class TrainingRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (TrainingRunStatus.SUCCEEDED, TrainingRunStatus.FAILED, TrainingRunStatus.CANCELLED)


class TrainingRun(models.Model):
    """``config`` is the full training.ml config the run trains with (recipe and overrides applied when it was
    created). ``history`` holds one record per finished epoch (loss, dev frame accuracy, frames/s); ``progress``
    the live position (stage, epoch, batch, ETA), written at most every few seconds; ``heartbeat_at``, beaten by a
    thread of the worker through every stage, tells a redelivered task whether the worker that claimed the run is
    still alive, and ``attempts`` numbers the claims: only the latest claim's worker may write to the row."""

    release = models.ForeignKey("benchmark.Release", on_delete=models.PROTECT, related_name="training_runs")
    recipe = models.CharField(max_length=16, choices=TrainingRecipe.choices)
    teacher = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="students", help_text="Mimic runs."
    )
    members = models.ManyToManyField("self", blank=True, symmetrical=False, related_name="ensembles")
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=TrainingRunStatus.choices, default=TrainingRunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Never reset: it is also the fencing token of the current claim (core.fencing), and a reset would let a
    # superseded worker's number come round again.
    attempts = models.PositiveIntegerField(
        default=0,
        help_text="Times a worker claimed the run (resumes count); the worker of the latest claim alone may write.",
    )
    worker = models.CharField(max_length=200, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Frame accuracy and PER after decoding.")
    hardware = models.JSONField(default=dict, blank=True)
    frames_per_second = models.FloatField(null=True, blank=True, help_text="Training throughput, last epoch.")
    parameters = models.PositiveBigIntegerField(null=True, blank=True)
    checkpoint = models.CharField(max_length=255, blank=True, help_text="The last checkpoint, in storage.")
    onnx = models.CharField(max_length=255, blank=True, help_text="The exported model, in storage.")
    hmm = models.CharField(
        max_length=255, blank=True, help_text="The monophone HMM its alignment trained, in storage (release builds)."
    )
    submission = models.OneToOneField(
        "benchmark.Submission", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=TrainingRunStatus.values), name="training_run_status_known"),
            models.CheckConstraint(condition=Q(recipe__in=TrainingRecipe.values), name="training_run_recipe_known"),
            models.CheckConstraint(
                condition=~Q(recipe=TrainingRecipe.MIMIC) | Q(teacher__isnull=False), name="training_run_mimic_teacher"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} {self.name} ({self.status})"

    @property
    def name(self) -> str:
        if self.recipe == TrainingRecipe.MIMIC and self.teacher_id:
            return f"mimic-of-{self.teacher_id}"
        return self.recipe

    @property
    def objective(self) -> str:
        """labels, mimic_l2 or mimic_soft: what the run's config trains on."""
        return self.config.get("train", {}).get("objective", "labels")

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def storage_prefix(self) -> str:
        return f"training/runs/{self.pk}"
