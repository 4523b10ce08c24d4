"""The request-scoped database session of the web app."""

from __future__ import annotations

import logging

from flask import Flask, current_app, g
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.config import Settings
from service.data.session import session_factory

log = logging.getLogger(__name__)


def settings() -> Settings:
    """The settings of the current app."""
    s: Settings = current_app.config["GRADSCHOOL"]
    return s


def get_db() -> Session:
    """This request's session, opened on first use."""
    if "db" not in g:
        g.db = session_factory(settings().database_url)()
    db: Session = g.db
    return db


def _close(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        try:
            db.close()
        except DBAPIError as err:
            # The response is made (a commit may be in it); a connection the database dropped
            # since cannot even roll back. The pool has invalidated it: nothing is left to undo.
            log.warning("closing a session on a lost database connection: %s", err.orig)


def init_app(app: Flask) -> None:
    """Close the session at the end of every request."""
    app.teardown_appcontext(_close)
