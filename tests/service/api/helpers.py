"""Small helpers of the API tests."""

from __future__ import annotations

from typing import Any

import torch

PROBLEM = "application/problem+json"


def problem(resp: Any, status: int) -> dict[str, Any]:
    """Assert a problem+json answer of `status` that names the problem; return it."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM, resp.mimetype
    body: dict[str, Any] = resp.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def ok(resp: Any, status: int = 200) -> Any:
    """Assert a successful answer; return its JSON."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def neuron_grads(params: dict[str, float]) -> dict[str, float]:
    """The oracle: dloss/dw, db, dx of the notes' neuron by autograd in float64."""
    x, w, b = (
        torch.tensor(float(params[k]), dtype=torch.float64, requires_grad=True) for k in "xwb"
    )
    ((1 - torch.sigmoid(w * x + b)) ** 2).backward()
    return {"w": w.grad.item(), "b": b.grad.item(), "x": x.grad.item()}  # type: ignore[union-attr]
