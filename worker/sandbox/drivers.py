"""The fixed, trusted drivers that call learner code inside the child (exercises/codejob.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from worker.sandbox import codec


class LearnerMistake(Exception):
    """The submission does not have the shape the exercise asks for (missing entry, wrong type)."""


def _callable(entry: str, value: Any) -> Callable[..., Any]:
    if not callable(value):
        raise LearnerMistake(f"`{entry}` should be a function")
    return value  # type: ignore[no-any-return]


def run_call(entry: str, value: Any, calls: list[dict[str, Any]]) -> Iterator[Any]:
    """entry(**kwargs) per call under torch.no_grad(); yields each result as data."""
    function = _callable(entry, value)
    for call in calls:
        kwargs = codec.decode(call)
        with torch.no_grad():
            result = function(**kwargs)
        yield codec.encode(result)


def run_train_step(entry: str, value: Any, calls: list[dict[str, Any]]) -> Iterator[Any]:
    """entry(**kwargs) per call with grad enabled (parameters arrive with requires_grad)."""
    function = _callable(entry, value)
    for call in calls:
        kwargs = codec.decode(call)
        with torch.enable_grad():
            result = function(**kwargs)
        yield codec.encode(result)


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def run_autograd_function(entry: str, value: Any, calls: list[dict[str, Any]]) -> Iterator[Any]:
    """Forward via .apply on float64 leaves, backward with grad_output; yields output and grads."""
    if not (isinstance(value, type) and issubclass(value, torch.autograd.Function)):
        raise LearnerMistake(f"`{entry}` should be a subclass of torch.autograd.Function")
    for call in calls:
        inputs = [
            codec.decode(item).detach().to(torch.float64).requires_grad_(True)
            for item in call["inputs"]
        ]
        with torch.enable_grad():
            output = value.apply(*inputs)
            outputs = _as_tuple(output)
            grad_outputs = _as_tuple(codec.decode(call["grad_output"]))
            if len(grad_outputs) != len(outputs):
                raise LearnerMistake(
                    f"forward returned {len(outputs)} outputs, the exercise expects "
                    f"{len(grad_outputs)}"
                )
            torch.autograd.backward(outputs, grad_outputs)
        grads = [codec.encode(x.grad) if x.grad is not None else None for x in inputs]
        yield {"output": codec.encode(output), "grads": grads}


DRIVERS: dict[str, Callable[[str, Any, list[dict[str, Any]]], Iterator[Any]]] = {
    "call": run_call,
    "autograd_function": run_autograd_function,
    "train_step": run_train_step,
}
