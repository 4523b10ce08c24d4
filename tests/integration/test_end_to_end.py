"""A submission through every real component: HTTP -> web -> broker -> Celery worker -> database."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.integration.stack import Stack, poll_graded, running_stack


def oracle(params: dict[str, float]) -> dict[str, float]:
    """dloss/dw, db, dx for the notes' neuron, by autograd in float64."""
    x, w, b = (
        torch.tensor(float(params[k]), dtype=torch.float64, requires_grad=True) for k in "xwb"
    )
    ((1 - torch.sigmoid(w * x + b)) ** 2).backward()
    return {"w": w.grad.item(), "b": b.grad.item(), "x": x.grad.item()}  # type: ignore[union-attr]


def _grade_numeric(stack: Stack) -> None:
    with stack.client() as http:
        detail = http.get("/api/v1/exercises/sigmoid-neuron")
        assert detail.status_code == 200, detail.text
        params = detail.json()["variant"]["params"]
        wrong = http.post(
            "/api/v1/exercises/sigmoid-neuron/submissions",
            json={"answers": {"w": 0, "b": 0, "x": 0}},
        )
        assert wrong.status_code == 202, wrong.text
        right = http.post(
            "/api/v1/exercises/sigmoid-neuron/submissions", json={"answers": oracle(params)}
        )
        assert right.status_code == 202, right.text
        try:
            bad = poll_graded(http, wrong.json()["id"])
            good = poll_graded(http, right.json()["id"])
        except TimeoutError as err:
            raise AssertionError(f"{err}\n{stack.log_tail()}") from err
        assert bad["status"] == "graded" and bad["score"] == 0.0
        assert good["status"] == "graded" and good["score"] == 1.0, good


@pytest.mark.integration
def test_postgresql_redis_and_a_real_worker(tmp_path: Path, pg_url: str, redis_prefix: str) -> None:
    env = {
        "DATABASE_URL": pg_url,
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "BROKER_KEY_PREFIX": redis_prefix,
    }
    with running_stack(env, tmp_path / "data") as stack:
        _grade_numeric(stack)


@pytest.mark.integration
def test_embedded_defaults_sqlite_and_filesystem_broker(tmp_path: Path) -> None:
    with running_stack({"BROKER_URL": "filesystem://"}, tmp_path / "data") as stack:
        _grade_numeric(stack)
