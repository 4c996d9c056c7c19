"""The machine-local state (core.local_state): importing settings creates nothing; each entry point prepares DATA_DIR,
the static root and the generated secrets once, and every process then reads the same secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

from core.settings_checks import secrets_check

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, data: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "RELEASE_SPLIT_KEY", "STATIC_ROOT"}}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "DATA_DIR": str(data), **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_importing_the_settings_creates_nothing(tmp_path):
    data = tmp_path / "data"
    result = run_python("import config.settings as s; print(repr(s.SECRET_KEY), repr(s.RELEASE_SPLIT_KEY))", data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["''", "''"]
    assert not data.exists()


def test_manage_py_prepares_the_state_once_and_keeps_its_secrets(tmp_path):
    data = tmp_path / "data"
    manage = [
        sys.executable,
        "manage.py",
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings as s; print(s.SECRET_KEY)",
    ]
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "RELEASE_SPLIT_KEY", "STATIC_ROOT"}}
    first = subprocess.run(manage, cwd=ROOT, env={**env, "DATA_DIR": str(data)}, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    key = (data / "secret_key").read_text().strip()
    assert first.stdout.strip() == key and len(key) >= 50
    assert (data / "release_split_key").is_file() and (data / "static").is_dir()
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    again = subprocess.run(manage, cwd=ROOT, env={**env, "DATA_DIR": str(data)}, capture_output=True, text=True)
    assert again.stdout.strip() == key


def test_the_celery_entry_point_prepares_it_and_secrets_from_the_environment_are_never_written(tmp_path):
    data = tmp_path / "data"
    result = run_python("import config.worker", data, SECRET_KEY="k" * 60)
    assert result.returncode == 0, result.stderr
    assert (data / "release_split_key").is_file()
    assert not (data / "secret_key").exists()


def test_processes_racing_to_prepare_agree_on_one_secret(tmp_path):
    data = tmp_path / "data"
    code = "from core import local_state; local_state.prepare(); print(local_state.secret('RELEASE_SPLIT_KEY'))"
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "RELEASE_SPLIT_KEY"}}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**clean, "DATA_DIR": str(data)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    seen = {racer.communicate(timeout=120)[0].strip() for racer in racers}
    assert seen == {(data / "release_split_key").read_text().strip()}
    assert sorted(p.name for p in data.iterdir()) == ["release_split_key", "secret_key", "static"]  # no drafts left


def test_the_check_names_a_missing_secret():
    with override_settings(RELEASE_SPLIT_KEY=""):
        (error,) = secrets_check()
    assert error.id == "core.E001" and "RELEASE_SPLIT_KEY is empty" in error.msg
    assert secrets_check() == []
