"""The three drivers, checked against torch autograd in float64 computed in this process."""

from __future__ import annotations

import math

import torch

from exercises.codejob import CodeJob, SandboxLimits
from tests.worker.sandbox.conftest import MAXIMA, tensor
from worker.sandbox import Sandbox

SIGMOID_FUNCTION = """
import torch

class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = 1 / (1 + torch.exp(-x))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (out,) = ctx.saved_tensors
        return grad_output * out * (1 - out)
"""

SGD_STEP = """
import torch

def step(w, x, y, lr):
    loss = ((w * x).sum() - y) ** 2
    loss.backward()
    with torch.no_grad():
        return {"w": w - lr * w.grad, "loss": loss.item()}
"""


def _close(got: list[float], expected: list[float]) -> bool:
    return all(
        math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
        for a, b in zip(got, expected, strict=True)
    )


def test_call_driver_runs_without_grad(sandbox: Sandbox) -> None:
    source = (
        "import torch\n"
        "def f(x):\n"
        "    return {'y': torch.tanh(x), 'grad_enabled': torch.is_grad_enabled()}\n"
    )
    calls = [{"x": tensor([0.25, -2.0])}, {"x": tensor([3.0])}]
    run = sandbox.run(CodeJob(source, "f", "call", calls, MAXIMA))
    assert run.status == "ok" and len(run.outputs) == 2
    assert _close(
        run.outputs[0]["y"]["__tensor__"],
        torch.tanh(torch.tensor([0.25, -2.0], dtype=torch.float64)).tolist(),
    )
    assert run.outputs[1]["y"]["shape"] == [1] and run.outputs[0]["grad_enabled"] is False


def test_autograd_function_driver_matches_autograd(sandbox: Sandbox) -> None:
    values, upstream = [0.3, -1.7, 2.2], [1.0, 0.5, -2.0]
    call = {"inputs": [tensor(values)], "grad_output": tensor(upstream)}
    run = sandbox.run(CodeJob(SIGMOID_FUNCTION, "Sigmoid", "autograd_function", [call], MAXIMA))
    assert run.status == "ok", run
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    y = torch.sigmoid(x)
    y.backward(torch.tensor(upstream, dtype=torch.float64))
    (out,) = run.outputs
    assert _close(out["output"]["__tensor__"], y.tolist())
    assert x.grad is not None and _close(out["grads"][0]["__tensor__"], x.grad.tolist())


def test_autograd_function_with_a_wrong_backward_is_data_not_a_verdict(sandbox: Sandbox) -> None:
    wrong = SIGMOID_FUNCTION.replace("out * (1 - out)", "out")
    call = {"inputs": [tensor([0.3])], "grad_output": tensor([1.0])}
    run = sandbox.run(CodeJob(wrong, "Sigmoid", "autograd_function", [call], MAXIMA))
    assert run.status == "ok"
    assert _close(
        run.outputs[0]["grads"][0]["__tensor__"],
        torch.sigmoid(torch.tensor([0.3], dtype=torch.float64)).tolist(),
    )


def test_train_step_driver_has_grad(sandbox: Sandbox) -> None:
    call = {
        "w": tensor([0.5, -0.25], requires_grad=True),
        "x": tensor([1.0, 2.0]),
        "y": 3.0,
        "lr": 0.1,
    }
    run = sandbox.run(CodeJob(SGD_STEP, "step", "train_step", [call], MAXIMA))
    assert run.status == "ok", run
    w = torch.tensor([0.5, -0.25], dtype=torch.float64, requires_grad=True)
    loss = ((w * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum() - 3.0) ** 2
    loss.backward()
    assert w.grad is not None
    assert _close(run.outputs[0]["w"]["__tensor__"], (w - 0.1 * w.grad).tolist())
    assert math.isclose(run.outputs[0]["loss"], loss.item(), rel_tol=1e-12)


def test_error_names_type_message_and_learner_line(sandbox: Sandbox) -> None:
    source = "import torch\n\ndef f(x):\n    y = x * 2\n    return y / 0 if False else 1 / 0\n"
    run = sandbox.run(CodeJob(source, "f", "call", [{"x": 1.0}], MAXIMA))
    assert run.status == "error" and run.error_line == 5
    assert run.error is not None and run.error.startswith("ZeroDivisionError: division by zero")
    assert "line 5, in f: return y / 0" in run.error
    assert "worker/sandbox" not in run.error and "worker/sandbox" not in run.stderr


def test_error_inside_torch_points_at_the_learner_line(sandbox: Sandbox) -> None:
    source = "import torch\ndef f(x):\n    return torch.mm(x, x)\n"
    run = sandbox.run(CodeJob(source, "f", "call", [{"x": tensor([1.0, 2.0])}], MAXIMA))
    assert run.status == "error" and run.error_line == 3 and run.error is not None
    assert run.error.startswith("RuntimeError:")


def test_syntax_error_and_missing_entry(sandbox: Sandbox) -> None:
    run = sandbox.run(CodeJob("def f(:\n  pass\n", "f", "call", [{}], MAXIMA))
    assert (
        run.status == "error" and run.error_line == 1 and run.error and "SyntaxError" in run.error
    )
    run = sandbox.run(CodeJob("def g():\n    return 1\n", "f", "call", [{}], MAXIMA))
    assert run.status == "error" and run.error == "your code does not define `f`"
    run = sandbox.run(CodeJob("f = 3\n", "f", "autograd_function", [{}], MAXIMA))
    assert run.status == "error" and run.error and "torch.autograd.Function" in run.error


def test_outputs_of_completed_calls_survive_a_later_error(sandbox: Sandbox) -> None:
    source = "def f(n):\n    return 10 // n\n"
    run = sandbox.run(CodeJob(source, "f", "call", [{"n": 2}, {"n": 0}, {"n": 5}], MAXIMA))
    assert run.status == "error" and run.outputs == [5]


def test_printed_output_is_captured(sandbox: Sandbox) -> None:
    source = "import sys\ndef f():\n    print('to out')\n    print('to err', file=sys.stderr)\n"
    run = sandbox.run(CodeJob(source, "f", "call", [{}], MAXIMA))
    assert (run.status, run.stdout, run.stderr, run.outputs) == (
        "ok",
        "to out\n",
        "to err\n",
        [None],
    )
    assert run.cpu_seconds > 0 and run.wall_seconds > 0


def test_job_limits_are_clamped_to_the_operator_maxima(sandbox: Sandbox) -> None:
    generous = SandboxLimits(cpu_seconds=60, wall_seconds=60)
    run = sandbox.run(
        CodeJob("def f():\n    while True:\n        pass\n", "f", "call", [{}], generous)
    )
    assert run.status == "timeout" and run.cpu_seconds < 3
