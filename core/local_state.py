"""The machine-local state of a site on its embedded defaults: the DATA_DIR folder, the static root, and the
secrets generated once and kept there (never in git). Plain Python, no Django.

Settings only *read* it (``data_dir``, ``secret``): importing them creates nothing. The processes that run the
site prepare it first, each in its entry point: ``manage.py``, ``config/wsgi.py`` (gunicorn), ``config/worker.py``
(``celery -A config.worker``) and the test run (``core/pytest_plugin.py``, a pytest plugin). Production sets
SECRET_KEY and RELEASE_SPLIT_KEY in the environment, and then nothing is generated.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The secrets a site generates for itself when the environment does not give them: name -> token bytes.
SECRETS = {"SECRET_KEY": 50, "RELEASE_SPLIT_KEY": 32}


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR") or BASE_DIR / "var").resolve()


def static_root() -> Path:
    return Path(os.environ.get("STATIC_ROOT") or data_dir() / "static")


def secret_path(name: str) -> Path:
    return data_dir() / name.lower()


def secret(name: str) -> str:
    """The environment's value, else the one kept in DATA_DIR, else "" (``prepare`` has not run: the settings
    checks say so by name, and Django refuses an empty SECRET_KEY when it first needs it)."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = secret_path(name)
    return path.read_text().strip() if path.is_file() else ""


def prepare() -> None:
    """Create what the embedded defaults need and is missing: DATA_DIR, the static root (whitenoise warns about a
    missing one) and each secret the environment does not set. Idempotent, and safe when processes race: a secret
    is written to a temporary name and linked into place, so every process reads the same one."""
    data = data_dir()
    data.mkdir(parents=True, exist_ok=True)
    static_root().mkdir(parents=True, exist_ok=True)
    for name, length in SECRETS.items():
        path = secret_path(name)
        if os.environ.get(name) or path.exists():
            continue
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(length))
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # fails if another process got there first: theirs is kept
        except FileExistsError:
            pass
        finally:
            draft.unlink()


if __name__ == "__main__":  # python -m core.local_state: prepare by hand (a container entrypoint, a new DATA_DIR)
    prepare()
    print(f"local state ready in {data_dir()}")
