"""The Celery app: configuration comes from Django settings (CELERY_* names), tasks from each app."""

import os

from celery import Celery
from celery.signals import worker_ready

from config import broker

broker.register()  # before any connection: the embedded default's URL is sqlite://
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _sweep_evaluation_folders(**kwargs) -> None:
    """Test audio a killed worker left in the temp directory (``eval-<pid>-*`` of a dead pid) goes at start."""
    from benchmark.leaderboard.evaluation.sandbox import sweep_temp_folders

    sweep_temp_folders()
