"""Run docker-compose.yml's gradschool services natively: their commands and environments, read
from the file, with only the host-specific values (addresses, ports, folders) replaced."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class InterpolationError(KeyError):
    """A required variable (`${NAME:?message}`) has no value."""


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as data (YAML anchors and merge keys resolved)."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's variable syntax: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = variables.get(name)
        if op in (":-", "-"):
            return arg if value is None or (op == ":-" and value == "") else value
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise InterpolationError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, value)


def env_file_values(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=value lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def service_environment(service: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    """What the container would get: the env file's values, then `environment`, interpolated."""
    env = {k: v for k, v in env_file_values().items() if v}
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for key, value in environment.items():
        env[key] = interpolate(str(value), variables)
    return env


def native_argv(command: list[str]) -> list[str]:
    """The `gradschool ...` command of a service, run by this interpreter."""
    if command[0] != "gradschool":
        raise ValueError(f"not a gradschool command: {command}")
    return [sys.executable, "-m", "service.cli", *command[1:]]


def replace_option(argv: list[str], option: str, value: str) -> list[str]:
    """argv with the value after `option` replaced (the option must be there)."""
    i = argv.index(option)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


@dataclass
class NativeServices:
    """Processes started from compose services, each with its own log file."""

    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start one service's process in its own session."""
        log = self.log_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 120) -> int:
        """Run a one-shot service to completion; returns its exit code."""
        proc = self.start(name, argv, env)
        try:
            return proc.wait(timeout=timeout)
        finally:
            self.procs.pop(name, None)

    def stop_all(self) -> None:
        """SIGTERM every process group (SIGKILL after 20 s)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def log_text(self, name: str) -> str:
        """Everything service `name` has printed so far."""
        path = self.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    def log_tail(self) -> str:
        """The last lines of every log, for failure messages."""
        return "\n".join(f"--- {n}\n{self.log_text(n)[-3000:]}" for n in self.logs)
