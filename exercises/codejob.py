"""Plain-data contract between code exercises (exercises/) and the sandbox (worker/sandbox/).

An exercise kind that grades code builds a `CodeJob`; the worker hands it to the
sandbox, which runs the learner's source in a jailed child and returns a
`CodeRun` holding only raw data. The verdict is then computed outside the
sandbox by the kind, from that data and a reference the child never saw.
Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Fixed, trusted drivers inside the sandbox child (worker/sandbox/drivers.py):
# - "call": import the source, call `entry(**kwargs)` for each call under
#   torch.no_grad(); return its result as data.
# - "autograd_function": `entry` names a torch.autograd.Function subclass; for each
#   call run forward on float64 inputs (requires_grad=True), then backward with the
#   given grad_output; return forward output and input gradients as data.
# - "train_step": call `entry(**kwargs)` with tensors that may require grad
#   (parameters marked in the call); return its result as data.
Driver = Literal["call", "autograd_function", "train_step"]

RunStatus = Literal["ok", "error", "timeout", "memory", "output_limit", "killed", "forbidden"]


@dataclass(frozen=True)
class SandboxLimits:
    """Per-job limits; the operator's maxima clamp whatever an exercise asks for."""

    cpu_seconds: float = 2.0
    wall_seconds: float = 5.0
    memory_mb: int = 256  # on top of the zygote's own size
    output_bytes: int = 64 * 1024
    file_size_bytes: int = 1024 * 1024
    open_files: int = 64

    def clamp(self, maxima: SandboxLimits) -> SandboxLimits:
        """Return these limits, none above the operator's maxima."""
        return SandboxLimits(
            cpu_seconds=min(self.cpu_seconds, maxima.cpu_seconds),
            wall_seconds=min(self.wall_seconds, maxima.wall_seconds),
            memory_mb=min(self.memory_mb, maxima.memory_mb),
            output_bytes=min(self.output_bytes, maxima.output_bytes),
            file_size_bytes=min(self.file_size_bytes, maxima.file_size_bytes),
            open_files=min(self.open_files, maxima.open_files),
        )


@dataclass(frozen=True)
class CodeJob:
    """One run of untrusted source: which driver, which entry point, which inputs.

    Each call's kwargs are JSON data; a tensor is written as
    {"__tensor__": nested list, "dtype": "float64", "requires_grad": bool}.
    For "autograd_function", each call is {"inputs": [tensor, ...], "grad_output": tensor}.
    """

    source: str
    entry: str
    driver: Driver
    calls: list[dict[str, Any]]
    limits: SandboxLimits = field(default_factory=SandboxLimits)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the pipe to the sandbox."""
        return asdict(self)


@dataclass(frozen=True)
class CodeRun:
    """What came back from the sandbox: raw outputs only, never a verdict.

    `outputs` has one entry per call that completed (JSON data, tensors encoded as
    in CodeJob); `error` is a learner-facing message with the line of the learner's
    code where it happened; figures are measured outside the child.
    """

    status: RunStatus
    outputs: list[Any]
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    error_line: int | None = None
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_memory_kb: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data to store with the submission."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeRun:
        """Rebuild from stored data."""
        return cls(**data)
