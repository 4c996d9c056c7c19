"""What every app's settings check needs (each app's conf.py registers its own check in its AppConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def whole_numbers(values: Iterable[tuple[str, object, int]], *, id: str) -> list[checks.CheckMessage]:
    """An error for each (setting name, value, least allowed) whose value is not a whole number at least that."""
    return [
        checks.Error(f"{name} must be a whole number, at least {least}.", obj=name, id=id)
        for name, value, least in values
        if not isinstance(value, int) or isinstance(value, bool) or value < least
    ]


def secrets_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The secrets the site needs (core.local_state.SECRETS) are set: from the environment, or generated in DATA_DIR
    by an entry point (manage.py, the WSGI module, the Celery worker's, the test run) before settings were read."""
    from django.conf import settings

    from core import local_state

    return [
        checks.Error(
            f"{name} is empty: set it in the environment, or let an entry point generate it "
            f"({local_state.secret_path(name)}; `python manage.py check` does).",
            obj=name,
            id="core.E001",
        )
        for name in local_state.SECRETS
        if not _is_set(settings, name)
    ]


def _is_set(settings, name: str) -> bool:
    try:
        return bool(getattr(settings, name, ""))
    except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
        return False
