"""Accounts, prompts, clips, votes and the trust engine's services."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_sql_functions(using: str = "default", **kwargs) -> None:
    """The validation path's PL/pgSQL functions (contributors/sql_functions.py), created wherever ``migrate`` runs."""
    from contributors.sql_functions import sql_functions_install

    sql_functions_install(using=using)


class ContributorsConfig(AppConfig):
    name = "contributors"
    verbose_name = "Contributors"

    def ready(self) -> None:
        from django.core import checks

        from contributors.conf import contributors_settings_check

        checks.register(contributors_settings_check)
        post_migrate.connect(_install_sql_functions, sender=self, dispatch_uid="contributors.sql_functions")
