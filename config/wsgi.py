"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from core import local_state

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
local_state.prepare()  # DATA_DIR and its generated secrets, before the settings read them
application = get_wsgi_application()
