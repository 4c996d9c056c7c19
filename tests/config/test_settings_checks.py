"""The apps' settings are checked when Django starts (``manage.py check``), not when a run or an upload needs them."""

from __future__ import annotations

from django.core import checks


def _training_messages() -> list[tuple[str, str]]:
    return [(m.id, m.obj) for m in checks.run_checks() if m.id and m.id.startswith("training.")]


def test_the_deployed_settings_pass():
    assert _training_messages() == []


def test_a_missing_base_config_and_impossible_numbers_are_errors(settings, tmp_path):
    settings.TRAINING_BASE_CONFIG = str(tmp_path / "missing.json")
    settings.TRAINING_MAX_ATTEMPTS = 0
    settings.TRAINING_PROGRESS_SECONDS = -1
    assert sorted(_training_messages()) == [
        ("training.E001", "TRAINING_BASE_CONFIG"),
        ("training.E002", "TRAINING_MAX_ATTEMPTS"),
        ("training.E002", "TRAINING_PROGRESS_SECONDS"),
    ]


def test_reports_too_sparse_for_the_heartbeat_are_a_warning(settings):
    settings.TRAINING_HEARTBEAT_STALE_SECONDS = 10
    settings.TRAINING_PROGRESS_SECONDS = 6
    assert _training_messages() == [("training.W001", "TRAINING_PROGRESS_SECONDS")]


def test_unknown_or_impossible_contributor_settings_are_errors(settings):
    settings.TRUST = {"MIN_TRUST": 1.5}
    settings.CLIP_LIMITS = {"NO_SUCH_LIMIT": 1}
    found = [(m.id, m.obj) for m in checks.run_checks() if m.id == "contributors.E001"]
    assert sorted(found) == [("contributors.E001", "CLIP_LIMITS"), ("contributors.E001", "TRUST")]


def test_impossible_release_and_submission_settings_are_errors(settings):
    settings.RELEASE_AUDIO_FORMAT = "mp3"
    settings.RELEASE_MAX_ATTEMPTS = 0
    settings.SUBMISSION_SANDBOX = {**settings.SUBMISSION_SANDBOX, "cpu_secs": 10}
    found = sorted((m.id, m.obj) for m in checks.run_checks() if m.id and m.id.startswith("benchmark."))
    assert found == [
        ("benchmark.E002", "RELEASE_AUDIO_FORMAT"),
        ("benchmark.E004", "RELEASE_MAX_ATTEMPTS"),
        ("benchmark.E005", "SUBMISSION_SANDBOX"),
    ]
