"""Shared fixtures: settings on a private SQLite file, the app, a client, and factories."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from tests.support import Factory, migrated_sqlite_template


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the catalog loaded, copied for each test."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("template") / "template.db")


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """Settings on this test's own copy of the database; grading runs inline."""
    db = tmp_path / "gradschool.db"
    shutil.copy(sqlite_template, db)
    return Settings(
        database_url=f"sqlite:///{db}",
        broker_url="memory://",
        secret_key="test-secret",
        data_dir=tmp_path,
        dev=True,
        grading_mode="inline",
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app, with a dispatcher that grades inline (the worker's own code, in-process)."""
    from service.app import create_app

    app = create_app(settings, TESTING=True)
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client."""
    return app.test_client()


@pytest.fixture
def factory(settings: Settings) -> Factory:
    """Creates users and tokens in the test database."""
    return Factory(settings.database_url)


@pytest.fixture
def learner(factory: Factory) -> dict[str, Any]:
    """A learner with an API token: {"user_id", "email", "password", "token", "headers"}."""
    return factory.user_with_token("learner")
