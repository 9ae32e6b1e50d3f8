"""WSGI entry point (the test live server and plain WSGI hosts)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fireflow.settings")

application = get_wsgi_application()
