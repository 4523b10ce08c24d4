"""Settings from the environment, shared by the web, the worker and the CLI."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import ConfigError

DEFAULT_DATA_DIR = "var"


def data_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory: GRADSCHOOL_DATA_DIR, else ./var."""
    env = os.environ if environ is None else environ
    return Path(env.get("GRADSCHOOL_DATA_DIR") or DEFAULT_DATA_DIR).resolve()


REDIS_SCHEMES = ("redis://", "rediss://")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once per process."""

    database_url: str
    broker_url: str
    secret_key: str
    data_dir: Path
    dev: bool = False
    grading_mode: str = "celery"  # "celery" or "inline" (a baseline: grade in the web request)
    broker_transport_options: dict[str, object] = field(default_factory=dict)
    max_queue_depth: int = 5000
    sweep_after_seconds: float = 120.0
    # A submission `running` this long lost its worker (longer than the task's hard time limit).
    running_grace_seconds: float = 120.0
    # Reverse proxies in front of the web whose X-Forwarded-For/-Proto to believe (0: none).
    trust_proxy_hops: int = 0
    # How long a web process may reuse what it looked up for an API token or a learner's
    # practice on an exercise (0: never). A change made in this process takes effect at
    # once; one made through another process (a revoked token, a new exam) within this.
    hot_cache_seconds: float = 5.0
    # Under load, how long a web process lets a batch of grading tasks fill (milliseconds):
    # at most this much added latency, for fewer and fuller tasks (0: one task per answer).
    grading_batch_ms: float = 50.0

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded database."""
        return self.database_url.startswith("sqlite")

    @property
    def redis_url(self) -> str | None:
        """The broker's URL when the broker is a Redis (which rate limits and cache
        invalidations then share), else None."""
        return self.broker_url if self.broker_url.startswith(REDIS_SCHEMES) else None


def _broker(url: str, data_dir: Path, env: Mapping[str, str]) -> tuple[str, dict[str, object]]:
    """Turn `filesystem:///path` into kombu's filesystem transport and its folders."""
    opts: dict[str, object] = {}
    if url.startswith("filesystem://"):
        path = Path(url[len("filesystem://") :] or data_dir / "broker")
        folder = path if path.is_absolute() else data_dir / path
        queue_dir = folder / "queue"
        processed = folder / "processed"
        control = folder / "control"
        for d in (queue_dir, processed, control):
            d.mkdir(parents=True, exist_ok=True)
        opts = {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed),
            "control_folder": str(control),
            "store_processed": False,
            "polling_interval": 0.05,
        }
        return "filesystem://", opts
    prefix = env.get("BROKER_KEY_PREFIX")
    if prefix and url.startswith(REDIS_SCHEMES):
        opts["global_keyprefix"] = prefix
    return url, opts


def load_settings(environ: Mapping[str, str] | None = None, *, dev: bool | None = None) -> Settings:
    """Read settings from the environment; SECRET_KEY is required outside dev."""
    env = os.environ if environ is None else environ
    data_dir = data_dir_from_env(env)
    is_dev = env.get("GRADSCHOOL_DEV") == "1" if dev is None else dev
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'gradschool.db'}"
    broker_url, opts = _broker(env.get("BROKER_URL") or "filesystem://", data_dir, env)
    secret_key = env.get("SECRET_KEY") or ""
    if not secret_key:
        if not is_dev:
            raise ConfigError("SECRET_KEY must be set (only `gradschool dev` generates one)")
        secret_key = dev_secret_key(data_dir)
    mode = env.get("GRADING_MODE", "celery")
    if mode not in ("celery", "inline"):
        raise ConfigError(f"GRADING_MODE must be 'celery' or 'inline', not {mode!r}")
    hops = env.get("TRUST_PROXY_HOPS") or "0"
    if not hops.isdigit():
        raise ConfigError(f"TRUST_PROXY_HOPS must be a whole number of proxies, not {hops!r}")
    return Settings(
        database_url=database_url,
        broker_url=broker_url,
        secret_key=secret_key,
        data_dir=data_dir,
        dev=is_dev,
        grading_mode=mode,
        broker_transport_options=opts,
        max_queue_depth=int(env.get("MAX_QUEUE_DEPTH", "5000")),
        sweep_after_seconds=float(env.get("SWEEP_AFTER_SECONDS", "120")),
        running_grace_seconds=float(env.get("RUNNING_GRACE_SECONDS", "120")),
        trust_proxy_hops=int(hops),
        hot_cache_seconds=_seconds(env, "HOT_CACHE_SECONDS", "5"),
        grading_batch_ms=_seconds(env, "GRADING_BATCH_MS", "50", "milliseconds"),
    )


def _seconds(env: Mapping[str, str], name: str, default: str, unit: str = "seconds") -> float:
    text = env.get(name) or default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, not {text!r}") from None
    if not 0 <= value <= 3600:
        raise ConfigError(f"{name} must be between 0 and 3600 {unit}, not {text!r}")
    return value


def dev_secret_key(data_dir: Path) -> str:
    """A secret key generated once into the data dir, for development only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
