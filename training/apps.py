"""Training runs as Celery tasks; the science lives in training.ml, free of Django."""

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        from django.core import checks

        from training.conf import training_settings_check

        checks.register(training_settings_check)
