"""The web's WSGI entry point (`python -m service.ops.serve` serves it): app and access log."""

from service.app import create_app
from service.ops.access_log import AccessLog
from service.ops.gc_tuning import freeze_startup_objects

app = create_app()
app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
if app.config["GRADSCHOOL"].grading_mode == "inline":
    # The no-queue baseline grades in this process: torch is part of its start-up too.
    from worker.grading import warm_up

    warm_up()
freeze_startup_objects()  # full collections then skip the app's start-up objects
