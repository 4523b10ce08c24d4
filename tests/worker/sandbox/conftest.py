"""One sandbox (one zygote) for the session, started with a canary secret in our environment."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import pytest

from exercises.codejob import CodeJob, CodeRun, SandboxLimits
from tests.worker.sandbox.hostile_programs import CANARY_ENV, CANARY_VALUE
from worker.sandbox import Sandbox

MAXIMA = SandboxLimits(cpu_seconds=1.0, wall_seconds=2.0, memory_mb=64, output_bytes=64 * 1024)
NEURON = """
import torch

def grad(w, b, x):
    out = torch.sigmoid(w * x + b)
    return {"dw": out * (1 - out) * x, "db": out * (1 - out), "dx": out * (1 - out) * w}
"""


def tensor(values: list[float], requires_grad: bool = False) -> dict[str, Any]:
    """A tensor in the wire format of CodeJob."""
    return {"__tensor__": values, "dtype": "float64", "requires_grad": requires_grad}


def normal_job() -> CodeJob:
    """The seed's sigmoid neuron: a job every sandbox must get right after any attack."""
    call = {"w": tensor([0.5, -1.25]), "b": tensor([0.1, 0.2]), "x": tensor([2.0, 3.0])}
    return CodeJob(NEURON, "grad", "call", [call], MAXIMA)


def assert_normal_run(run: CodeRun) -> None:
    """The neuron's gradients agree with torch autograd in float64, computed here."""
    import torch

    assert run.status == "ok", run
    w = torch.tensor([0.5, -1.25], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([2.0, 3.0], dtype=torch.float64, requires_grad=True)
    torch.sigmoid(w * x + b).sum().backward()
    got = run.outputs[0]
    for name, ref in (("dw", w.grad), ("db", b.grad), ("dx", x.grad)):
        assert ref is not None
        assert got[name]["shape"] == [2]
        for a, e in zip(got[name]["__tensor__"], ref.tolist(), strict=True):
            assert math.isclose(a, e, rel_tol=1e-12), (name, a, e)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """A secure sandbox; our environment holds a canary that must never reach a child."""
    os.environ[CANARY_ENV] = CANARY_VALUE
    box = Sandbox(MAXIMA)
    yield box
    box.close()
    os.environ.pop(CANARY_ENV, None)
