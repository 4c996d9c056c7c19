"""Shared bases: the API error format, request guards and the phone inventory."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"
