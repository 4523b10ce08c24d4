"""Run untrusted code (learners' and instructors') in jailed children of a torch-loaded zygote.

See docs/SANDBOX.md for the design and what each defence stops.
"""

from worker.sandbox.errors import SandboxCrashed, SandboxError, SandboxUnavailable
from worker.sandbox.host import Sandbox
from worker.sandbox.settings import SandboxSettings, limits_from_env, settings_from_env
from worker.sandbox.shared import close_sandbox, get_sandbox, sandbox_status

__all__ = [
    "Sandbox",
    "SandboxCrashed",
    "SandboxError",
    "SandboxSettings",
    "SandboxUnavailable",
    "close_sandbox",
    "get_sandbox",
    "limits_from_env",
    "sandbox_status",
    "settings_from_env",
]
