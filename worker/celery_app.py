"""The Celery app of the grading workers: built once from the shared settings.

Run: `celery -A worker.celery_app worker -Q numeric,code`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from service.config import load_settings
from service.data.session import dispose_all
from service.ops.gc_tuning import freeze_startup_objects
from service.queueing import celery_config
from worker import observability

log = logging.getLogger(__name__)

settings = load_settings()
celery_app = Celery("gradschool")
celery_app.config_from_object(celery_config(settings))
celery_app.conf.include = ["worker.tasks"]
app = celery_app  # `celery -A worker.celery_app` finds `app` or `celery_app`
observability.install(celery_app)  # JSON logs with submission ids, metrics endpoint


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    """A forked pool process must not share its parent's database connections."""
    dispose_all()


@worker_init.connect
def _warm_up(**_: Any) -> None:
    """Import torch and run autograd once before the first task (worker.grading.warm_up)."""
    from service.data.session import session_factory
    from worker.grading import warm_up

    warm_up()
    session_factory(settings.database_url)  # the engine and its driver, imported and made
    # torch, sympy and the rest stay for the worker's life: full collections skip them, and
    # pool children forked after it (concurrency > 1) do not copy their pages by collecting.
    freeze_startup_objects()
