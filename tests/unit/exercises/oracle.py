"""An oracle independent of the exercise engine: the catalog's forward code run by real
PyTorch via exec (trusted built-in files, tests only), differentiated by central
finite differences in float64."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from exercises.spec import ExerciseSpec


def _lines(spec: ExerciseSpec) -> list[tuple[str, Any]]:
    out = []
    for line in spec.forward.strip().splitlines():
        if line.strip():
            out.append((line.split("=", 1)[0].strip(), compile(line, "<forward>", "exec")))
    return out


def forward(
    spec: ExerciseSpec,
    params: dict[str, Any],
    nudge: tuple[str, tuple[int, ...], float] | None = None,
    extra: dict[str, Any] | None = None,
    lines: list[tuple[str, Any]] | None = None,
) -> dict[str, torch.Tensor]:
    """Every name after running the forward code; `nudge` adds delta to one entry of a node."""
    env: dict[str, Any] = {"torch": torch}
    for k, v in {**params, **(extra or {})}.items():
        env[k] = torch.tensor(v, dtype=torch.float64)

    def apply(name: str) -> None:
        if nudge is not None and nudge[0] == name:
            t = env[name].clone()
            t[nudge[1]] += nudge[2]
            env[name] = t

    for name in params:
        apply(name)
    for target, code in lines or _lines(spec):
        exec(code, env)  # the trusted built-in catalog, in tests only
        apply(target)
    return env


def fd_gradient(
    spec: ExerciseSpec,
    params: dict[str, Any],
    of: str,
    wrt: str,
    extra: dict[str, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Central-difference d(of)/d(wrt) (of must be a scalar), element by element."""
    lines = _lines(spec)
    base = forward(spec, params, extra=extra, lines=lines)[wrt]
    grad = np.zeros(tuple(base.shape))
    for idx in np.ndindex(*base.shape):
        h = 1e-6 * max(1.0, abs(float(base[idx])))
        up = forward(spec, params, (wrt, idx, h), extra, lines)[of]
        down = forward(spec, params, (wrt, idx, -h), extra, lines)[of]
        grad[idx] = (float(up.sum()) - float(down.sum())) / (2 * h)
    return grad


def autograd_gradient(spec: ExerciseSpec, params: dict[str, Any], of: str, wrt: str) -> Any:
    """d(of)/d(wrt) by PyTorch's own autograd on the exec'd code (for inputs at a kink)."""
    env: dict[str, Any] = {"torch": torch}
    for k, v in params.items():
        env[k] = torch.tensor(v, dtype=torch.float64, requires_grad=spec.params[k].requires_grad)
    for target, code in _lines(spec):
        exec(code, env)  # the trusted built-in catalog, in tests only
        if target == wrt:
            env[wrt].retain_grad()
    env[of].backward()
    return env[wrt].grad.numpy()


def close(actual: Any, expected: Any, rel: float = 1e-5) -> bool:
    """Equal within `rel` of the larger of each entry and the tensor's scale."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return False
    scale = max(float(np.max(np.abs(e), initial=0.0)), 1e-300)
    return bool(np.all(np.abs(a - e) <= rel * np.maximum(np.abs(e), 1e-3 * scale)))
