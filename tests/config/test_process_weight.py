"""Every process Django starts (the web server, each Celery worker, each manage.py command) imports the apps, their
admin and their tasks. PyTorch and onnx are for the processes that train or check a model: loaded at start-up they
cost each of the others a second and a half of CPU and hundreds of MB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import os
import sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from config.celery import app
app.loader.import_default_modules()  # what a worker imports: every app's tasks
print(" ".join(sorted(name for name in ("torch", "onnx", "onnxruntime", "librosa") if name in sys.modules)))
"""


def test_starting_django_and_its_tasks_loads_no_model_library():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
