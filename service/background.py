"""Background jobs other than grading (exercise dry runs, regrades), sent to workers by name.

Like grading, the web only names the task, so it never imports worker code or torch;
with GRADING_MODE=inline (tests, the benchmark baseline) the job runs in this process.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from celery import Celery
from flask import Flask, current_app
from kombu.exceptions import KombuError, OperationalError

from service.config import Settings

log = logging.getLogger(__name__)

DRY_RUN_TASK = "authoring.dry_run_exercise"
REGRADE_TASK = "regrading.regrade_submissions"


class Background(Protocol):
    """Something that runs a named background task."""

    def send(self, task: str, args: list[Any], queue: str) -> bool:
        """Hand over; False when the broker could not take it."""


class CeleryBackground:
    """Send the task by name to a queue."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def send(self, task: str, args: list[Any], queue: str) -> bool:
        """Send the task; a broker outage is reported, not raised."""
        try:
            self.celery.send_task(task, args=args, queue=queue)
        except (OperationalError, KombuError, OSError) as err:
            log.warning("broker unavailable, %s%s not sent: %s", task, args, err)
            return False
        return True


class InlineBackground:
    """Run the task now, in this process (imports the worker lazily)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def send(self, task: str, args: list[Any], queue: str) -> bool:
        """Run it."""
        if task == DRY_RUN_TASK:
            from worker.authoring import dry_run

            dry_run(self.database_url, *args)
        elif task == REGRADE_TASK:
            from worker.regrading import regrade_submissions

            regrade_submissions(self.database_url, *args)
        else:
            raise LookupError(f"no inline runner for task {task}")
        return True


def background() -> Background:
    """The current app's runner of background tasks."""
    b: Background = current_app.extensions["gradschool.background"]
    return b


def init_app(app: Flask) -> None:
    """Choose Celery or inline by GRADING_MODE (tests may replace it)."""
    settings: Settings = app.config["GRADSCHOOL"]
    app.extensions["gradschool.background"] = (
        InlineBackground(settings.database_url)
        if settings.grading_mode == "inline"
        else CeleryBackground(app.extensions["celery"])
    )
