"""The deployment files: compose services point at real modules; production settings pass --deploy."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ["migrate", "web", "worker", "eval-worker", "gpu-worker", "beat"]


def named_volume_at(service: str, path: str) -> str | None:
    """The named volume that holds ``path`` in ``service``'s container (None: the container's own layer, lost when
    it is re-created)."""
    for mount in COMPOSE["services"][service].get("volumes", []):
        source, _, target = mount.partition(":")
        target = target.split(":")[0]
        if source in COMPOSE["volumes"] and (path == target or path.startswith(target.rstrip("/") + "/")):
            return source
    return None


def test_compose_has_every_service_and_keeps_their_state_on_named_volumes():
    """What each service writes survives re-creating its container: the app's data and media (where compose's
    environment puts them), PostgreSQL's cluster, Redis's append-only file; and the app services share one."""
    assert set(COMPOSE["services"]) == {"postgres", "redis", *APP_SERVICES}
    for name in ["postgres", "redis", "web", "worker", "gpu-worker"]:
        assert "healthcheck" in COMPOSE["services"][name], name
    env = COMPOSE["x-app-env"]
    app_volumes = {named_volume_at(name, env[key]) for name in APP_SERVICES for key in ("DATA_DIR", "MEDIA_ROOT")}
    assert len(app_volumes) == 1 and None not in app_volumes, app_volumes
    pgdata = COMPOSE["services"]["postgres"]["environment"].get("PGDATA", "/var/lib/postgresql/data")  # the image's
    assert named_volume_at("postgres", pgdata)
    redis = COMPOSE["services"]["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes" and named_volume_at("redis", "/data")  # its working dir


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


def compose_value(value: object) -> str:
    """A compose value as compose gives it with nothing set: ``${X:-default}`` is the default, ``${X:?message}``
    (required) a value of our own."""
    return re.sub(r"\$\{\w+(?::([-?])([^}]*))?\}", lambda m: m[2] if m[1] == "-" else "a-required-value", str(value))


def test_the_compose_environment_configures_the_deployment_it_describes(tmp_path):
    """Settings loaded under the app services' environment read every variable compose sets, and come out as it
    says: PostgreSQL, Redis for the broker and the cache, no debug, the data volume's paths (here in tmp_path)."""
    env = {name: compose_value(value) for name, value in COMPOSE["x-app-env"].items()}
    env |= {"DATA_DIR": str(tmp_path / "data"), "MEDIA_ROOT": str(tmp_path / "data" / "media")}
    load = """
import json, os
read = set()
class Recorded(dict):
    def __getitem__(self, key):
        read.add(key)
        return super().__getitem__(key)
    def get(self, key, default=None):
        read.add(key)
        return super().get(key, default)
    def __contains__(self, key):
        read.add(key)
        return super().__contains__(key)
os.environ = Recorded(os.environ)
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "read": sorted(read), "database": [database["ENGINE"], database["HOST"], database["NAME"]],
    "broker": settings.CELERY_BROKER_URL, "cache": settings.CACHES["default"]["LOCATION"], "debug": settings.DEBUG,
    "https": settings.SECURE_SSL_REDIRECT, "media": str(settings.MEDIA_ROOT),
}))
"""
    base = {k: v for k, v in os.environ.items() if k not in {*env, "PYTHONPATH"} and not k.startswith("CELERY")}
    result = subprocess.run(
        [sys.executable, "-c", load], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**base, **env, "DJANGO_SETTINGS_MODULE": "config.settings", "STATIC_ROOT": str(tmp_path / "static")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    assert set(env) - set(loaded["read"]) == set(), "compose sets variables that settings never read"
    assert loaded["database"] == ["core.db.postgresql", "postgres", "openphone"]
    assert (loaded["broker"], loaded["cache"]) == ("redis://redis:6379/0", "redis://redis:6379/1")
    assert (loaded["debug"], loaded["https"], loaded["media"]) == (False, True, env["MEDIA_ROOT"])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(word.upper(), rest.strip()) for word, _, rest in (line.partition(" ") for line in lines)]


def test_the_images_python_is_one_the_project_supports():
    (base,) = [args for word, args in dockerfile_instructions() if word == "FROM"]
    version = re.fullmatch(r"python:(\d+\.\d+)[.\w-]*", base)
    assert version, f"the base image is not an official Python one: {base}"
    supported = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert Version(version[1]) in supported, (base, str(supported))


def test_the_images_files_pass_the_checks_and_serve_wsgi(tmp_path):
    """The Dockerfile's COPY lines replayed into a folder, where no other copy of the project can be imported: Django's
    checks pass there (they load every URL's view, so every module a request can reach, and every app) and the CMD's
    gunicorn target is a WSGI callable that answers a request. A package the code imports but the image does not
    copy fails here, as it would fail in the container."""
    instructions = dockerfile_instructions()
    app = tmp_path / "app"
    app.mkdir()
    for word, args in instructions:
        if word != "COPY":
            continue
        *sources, target = args.split()
        for source in sources:
            destination = app / target / Path(source).name if target.endswith("/") else app / target
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, destination)
    cmd = json.loads(next(args for word, args in reversed(instructions) if word == "CMD"))
    assert cmd[0] == "gunicorn", cmd
    target = cmd[1]
    serve = f"""
import sys
# Only the copied tree: not the checkout's packages (the working directory, the editable install's finder).
sys.path[:] = [p for p in sys.path if p not in ("", {str(ROOT)!r}) and not p.startswith("__editable__")]
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, {str(app)!r})
import importlib
from django.core.management import call_command
module, attr = {target!r}.split(":")
application = getattr(importlib.import_module(module), attr)  # as gunicorn loads it: the entry point sets Django up
assert importlib.import_module("config").__file__.startswith({str(app)!r})
call_command("check", fail_level="ERROR")
statuses = []
environ = {{"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "SERVER_NAME": "localhost", "SERVER_PORT": "8000",
           "HTTP_HOST": "localhost", "wsgi.url_scheme": "http", "wsgi.input": __import__("io").BytesIO()}}
body = b"".join(application(environ, lambda status, headers: statuses.append(status)))
print(*statuses, body.decode(), sep="\\n")
"""
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH"}},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(tmp_path / "data" / "media"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "SECRET_KEY": "image-check",
        "CELERY_BROKER_URL": "memory://",
    }
    result = subprocess.run(
        [sys.executable, "-c", serve], cwd=app, env=env, capture_output=True, text=True, timeout=300
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-2:] == ["200 OK", json.dumps({"status": "ok"})]


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
