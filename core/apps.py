"""Shared bases: the API error format, request guards, rate limits and the phone inventory."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_cache_table(using: str = "default", **kwargs) -> None:
    """The database cache's table (settings.CACHES without CACHE_URL), created wherever ``migrate`` runs: ``make
    run``, the Docker image's migrate service, each test database. A no-op for other cache backends and once the
    table exists."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.core import checks

        from core.settings_checks import secrets_check

        checks.register(secrets_check)
        post_migrate.connect(_create_cache_table, sender=self, dispatch_uid="core.create_cache_table")
