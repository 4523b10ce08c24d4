"""A tiny in-process stand-in for worker/sandbox's drivers, for unit tests ONLY.

It execs trusted test snippets in this process (the real sandbox jails a child);
it mimics the drivers' data contract so grade_run can be tested without a sandbox.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

import torch

from exercises.codejob import CodeJob, CodeRun

FILENAME = "<learner>"


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        t = torch.tensor(value["__tensor__"], dtype=torch.float64)
        return t.requires_grad_(bool(value.get("requires_grad", False)))
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _float(x: float) -> float | str:
    return x if math.isfinite(x) else {"nan": "NaN", "inf": "Infinity"}.get(repr(x), "-Infinity")


def _encode(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        data = value.detach().tolist()
        return {
            "__tensor__": data,
            "dtype": "float64",
            "shape": list(value.shape),
            "requires_grad": value.requires_grad,
        }
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"a value of type {type(value).__name__}")


def _calls(job: CodeJob, entry: Any) -> list[Any]:
    outputs = []
    for call in job.calls:
        if job.driver == "call":
            with torch.no_grad():
                outputs.append(_encode(entry(**_decode(call))))
        elif job.driver == "train_step":
            with torch.enable_grad():
                outputs.append(_encode(entry(**_decode(call))))
        else:
            inputs = [_decode(i).detach().requires_grad_(True) for i in call["inputs"]]
            with torch.enable_grad():
                out = entry.apply(*inputs)
                torch.autograd.backward([out], [_decode(call["grad_output"])])
            grads = [_encode(i.grad) if i.grad is not None else None for i in inputs]
            outputs.append({"output": _encode(out), "grads": grads})
    return outputs


def run(job: CodeJob) -> CodeRun:
    """Run the job's source in-process and return raw outputs, as the sandbox would."""
    namespace: dict[str, Any] = {"__name__": "learner"}
    try:
        exec(compile(job.source, FILENAME, "exec"), namespace)  # tests only
        entry = namespace.get(job.entry)
        if entry is None:
            return CodeRun("error", [], error=f"`{job.entry}` is not defined")
        return CodeRun("ok", _calls(job, entry))
    except Exception as exc:  # mimic the driver: any learner exception becomes data
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
        line = frames[-1].lineno if frames else None
        return CodeRun("error", [], error=f"{type(exc).__name__}: {exc}", error_line=line)
