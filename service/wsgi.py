"""WSGI entry point for gunicorn: `gunicorn service.wsgi:app`."""

from service.app import create_app
from service.ops.gc_tuning import freeze_startup_objects

app = create_app()
if app.config["GRADSCHOOL"].grading_mode == "inline":
    # The no-queue baseline grades in this process: torch is part of its start-up too.
    from worker.grading import warm_up

    warm_up()
freeze_startup_objects()  # full collections then skip the app's start-up objects
