"""WSGI entry point for gunicorn: `gunicorn service.wsgi:app`."""

from service.app import create_app
from service.ops.gc_tuning import freeze_startup_objects

app = create_app()
freeze_startup_objects()  # full collections then skip the app's start-up objects
