"""Operator settings of the sandbox, read from the worker's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from exercises.codejob import SandboxLimits

_LIMIT_VARIABLES = {
    "cpu_seconds": "SANDBOX_MAX_CPU_SECONDS",
    "wall_seconds": "SANDBOX_MAX_WALL_SECONDS",
    "memory_mb": "SANDBOX_MAX_MEMORY_MB",
    "output_bytes": "SANDBOX_MAX_OUTPUT_BYTES",
    "file_size_bytes": "SANDBOX_MAX_FILE_SIZE_BYTES",
    "open_files": "SANDBOX_MAX_OPEN_FILES",
}
# Operator maxima when nothing is set: the exercise defaults are well inside them.
DEFAULT_MAXIMA = SandboxLimits(
    cpu_seconds=10.0,
    wall_seconds=20.0,
    memory_mb=1024,
    output_bytes=1024 * 1024,
    file_size_bytes=8 * 1024 * 1024,
    open_files=256,
)
_TRUE = {"1", "true", "yes", "on"}


class SandboxConfigError(ValueError):
    """A SANDBOX_* variable holds a value that is not a positive number."""


def _positive(environ: Mapping[str, str], name: str, kind: type[float] | type[int]) -> float | int:
    raw = environ[name]
    try:
        value = kind(raw)
    except ValueError:
        raise SandboxConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SandboxConfigError(f"{name}={raw!r} must be positive")
    return value


def limits_from_env(environ: Mapping[str, str]) -> SandboxLimits:
    """The operator's maxima: DEFAULT_MAXIMA overridden by SANDBOX_MAX_* variables."""
    values: dict[str, float | int] = {}
    for field in fields(SandboxLimits):
        name = _LIMIT_VARIABLES[field.name]
        if name in environ:
            kind = float if field.type in (float, "float") else int
            values[field.name] = _positive(environ, name, kind)
    return SandboxLimits(**{**DEFAULT_MAXIMA.__dict__, **values})


@dataclass(frozen=True)
class SandboxSettings:
    """Everything a Sandbox needs from the environment."""

    maxima: SandboxLimits
    insecure_dev_mode: bool = False
    uid: int = 65534  # nobody; give each worker host its own if several share a kernel
    headroom_mb: int = 512  # address space torch may need above the zygote's own size
    max_tasks: int = 32  # RLIMIT_NPROC for the sandbox uid (threads; processes are denied)


def settings_from_env(environ: Mapping[str, str]) -> SandboxSettings:
    """Settings from SANDBOX_* variables (SANDBOX_INSECURE_DEV_MODE=1 for development only)."""
    uid = int(_positive(environ, "SANDBOX_UID", int)) if "SANDBOX_UID" in environ else 65534
    return SandboxSettings(
        maxima=limits_from_env(environ),
        insecure_dev_mode=environ.get("SANDBOX_INSECURE_DEV_MODE", "").lower() in _TRUE,
        uid=uid,
    )
