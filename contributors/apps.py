"""Accounts, prompts, clips, votes and (later) the trust engine."""

from django.apps import AppConfig


class ContributorsConfig(AppConfig):
    name = "contributors"
    verbose_name = "Contributors"
