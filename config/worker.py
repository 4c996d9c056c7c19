"""The Celery worker's and beat's entry point (``celery -A config.worker worker``): it prepares the machine-local
state (core.local_state) as manage.py and the WSGI module do, then hands Celery the app."""

from core import local_state

local_state.prepare()

from config.celery import app  # noqa: E402  (after the state it may read exists)

celery_app = app
__all__ = ("app", "celery_app")
