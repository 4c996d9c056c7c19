"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from core import local_state

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
local_state.prepare()  # DATA_DIR and its generated secrets, before the settings read them
application = get_asgi_application()
