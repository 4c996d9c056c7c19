"""What every app's settings check needs (each app's conf.py registers its own check in its AppConfig.ready())."""

from __future__ import annotations

from collections.abc import Iterable

from django.core import checks


def whole_numbers(values: Iterable[tuple[str, object, int]], *, id: str) -> list[checks.CheckMessage]:
    """An error for each (setting name, value, least allowed) whose value is not a whole number at least that."""
    return [
        checks.Error(f"{name} must be a whole number, at least {least}.", obj=name, id=id)
        for name, value, least in values
        if not isinstance(value, int) or isinstance(value, bool) or value < least
    ]
