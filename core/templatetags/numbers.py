"""Numbers as people read them on the pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.2288 -> "22.9 %" (a phone error rate reads as a percentage); an en dash for no value."""
    if value is None or value == "":
        return "\u2013"
    return f"{100 * float(value):.{int(digits)}f} %"
