"""Shared fixtures for the exercises domain tests."""

from __future__ import annotations

import pytest

from exercises.catalog import load_builtin_catalog
from exercises.spec import ExerciseSpec


@pytest.fixture(scope="session")
def catalog() -> dict[str, ExerciseSpec]:
    """The built-in catalog by slug."""
    return {s.slug: s for s in load_builtin_catalog()}


@pytest.fixture(scope="session")
def sigmoid_neuron(catalog: dict[str, ExerciseSpec]) -> ExerciseSpec:
    """The notes' canonical exercise."""
    return catalog["sigmoid-neuron"]
