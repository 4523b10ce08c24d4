"""Fixtures of the instructor API's tests: the world (see world.py) and an app on a copy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.config import Settings
from tests.service.api.world import World, build_world, copy_world


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The world, built once per session."""
    return build_world(tmp_path_factory.mktemp("world") / "world.db")


def settings_for(world: World, data_dir: Path) -> Settings:
    """Settings on the world's database; grading and background jobs run inline."""
    return Settings(
        database_url=f"sqlite:///{world.database}",
        broker_url="memory://",
        secret_key="test-secret",
        data_dir=data_dir,
        dev=True,
        grading_mode="inline",
    )


def app_for(world: World, data_dir: Path, **overrides: object) -> Flask:
    """An app on the world (rate limits high enough never to interfere)."""
    from service.app import create_app

    config = {"TESTING": True, "API_RATE_LIMIT": "100000 per minute"}
    config["API_HEAVY_RATE_LIMIT"] = "100000 per minute"
    config.update(overrides)
    return create_app(settings_for(world, data_dir), **config)


@pytest.fixture
def world(world_template: World, tmp_path: Path) -> World:
    """This test's own copy of the world."""
    return copy_world(world_template, tmp_path / "world.db")


@pytest.fixture
def api(world: World, tmp_path: Path) -> FlaskClient:
    """A test client of an app on this test's world."""
    return app_for(world, tmp_path).test_client()


@pytest.fixture
def fresh_api(world_template: World, tmp_path: Path) -> Callable[[str], tuple[World, FlaskClient]]:
    """Make any number of (world, client) pairs, each on its own copy of the world."""
    count = 0

    def make(tag: str = "") -> tuple[World, FlaskClient]:
        nonlocal count
        count += 1
        folder = tmp_path / f"w{count}{tag}"
        folder.mkdir()
        copy = copy_world(world_template, folder / "world.db")
        return copy, app_for(copy, folder).test_client()

    return make
