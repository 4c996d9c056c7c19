"""Training runs as Celery tasks; the science lives in training.ml, free of Django."""

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"
