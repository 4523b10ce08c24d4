"""Infrastructure faults of the sandbox (learner mistakes are CodeRun statuses, never these)."""

from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the learner's code); the job may be retried."""


class SandboxUnavailable(SandboxError):
    """The kernel or the container refuses isolation features the sandbox requires."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "the code sandbox cannot isolate untrusted code here; missing: "
            + "; ".join(missing)
            + ". Run the worker as root with CAP_SYS_ADMIN and a seccomp/AppArmor profile that"
            " allows unshare, mount and pivot_root (see docs/SANDBOX.md), or set"
            " SANDBOX_INSECURE_DEV_MODE=1 on a development machine only."
        )


class SandboxCrashed(SandboxError):
    """The zygote died or stopped answering during a job; it is restarted on the next run."""
