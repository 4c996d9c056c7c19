"""The deployment files: compose services point at real modules; production settings pass --deploy."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ["migrate", "web", "worker", "eval-worker", "gpu-worker", "beat"]


def test_compose_has_every_service_with_named_volumes():
    assert set(COMPOSE["services"]) == {"postgres", "redis", *APP_SERVICES}
    for name in ["postgres", "redis", "web", "worker", "gpu-worker"]:
        assert "healthcheck" in COMPOSE["services"][name], name
    assert set(COMPOSE["volumes"]) == {"pgdata", "redisdata", "appdata"}
    assert "pgdata:/var/lib/postgresql/data" in COMPOSE["services"]["postgres"]["volumes"]
    for name in APP_SERVICES:
        assert "appdata:/data" in COMPOSE["services"][name]["volumes"]


def test_app_services_wait_for_the_database_and_the_broker():
    for name in APP_SERVICES:
        depends = COMPOSE["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_the_gpu_worker_reserves_an_nvidia_device_and_takes_only_the_gpu_queue():
    service = COMPOSE["services"]["gpu-worker"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    command = service["command"]
    assert command[command.index("-Q") + 1] == "gpu"
    assert COMPOSE["services"]["worker"]["command"][COMPOSE["services"]["worker"]["command"].index("-Q") + 1] == (
        "default"
    )
    evaluations = COMPOSE["services"]["eval-worker"]["command"]
    assert evaluations[evaluations.index("-Q") + 1] == "eval"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_app_command_points_at_a_real_module(name):
    command = COMPOSE["services"][name]["command"]
    program = command[0]
    if program == "gunicorn":
        module, _, attr = command[1].partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
    elif program == "celery":
        app_module = command[command.index("-A") + 1]
        assert hasattr(importlib.import_module(app_module), "celery_app")
        assert command[command.index("-A") + 2] in {"worker", "beat"}
        if "-Q" in command:
            known = {queue.name for queue in settings.CELERY_TASK_QUEUES}
            assert set(command[command.index("-Q") + 1].split(",")) <= known
    elif program == "python":
        assert command[1] == "manage.py" and (ROOT / "manage.py").is_file()
        assert command[2] in get_commands()
    else:
        pytest.fail(f"{name}: unexpected program {program}")


def test_the_environment_names_are_the_ones_settings_read():
    # settings.py, and core/local_state.py for DATA_DIR, STATIC_ROOT and the generated secrets
    settings_source = (ROOT / "config" / "settings.py").read_text() + (ROOT / "core" / "local_state.py").read_text()
    for variable in COMPOSE["x-app-env"]:
        assert re.search(rf'"{variable}"', settings_source), f"settings never read {variable}"


def test_the_dockerfile_installs_the_project_and_serves_wsgi():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "config.wsgi:application" in dockerfile
    assert "TORCH_INDEX_URL" in dockerfile


def test_check_deploy_is_clean_under_production_values(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DEBUG": "false",
        "HTTPS": "true",
        "SECRET_KEY": "x7#kq2!v9" * 8,
        "ALLOWED_HOSTS": "speech.example.org",
        "DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_boolean_setting_stops_start_up_with_its_name(tmp_path):
    env = {**os.environ, "DEBUG": "maybe", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr
