"""WSGI entry point for gunicorn: `gunicorn service.wsgi:app`."""

import os
import sys

from service.app import create_app

# gunicorn's threads in a web process share one GIL, which CPython hands over every 5 ms by
# default: a request whose database answer has arrived may wait that long, several times
# per request, behind a thread busy in Python. A shorter interval keeps a GET quick while
# POSTs keep the process busy, for a few more switches (see docs/PERFORMANCE.md).
sys.setswitchinterval(float(os.environ.get("WEB_SWITCH_INTERVAL_MS", "1")) / 1000)

app = create_app()
