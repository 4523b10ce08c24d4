"""The Flask application factory: a short list of init_app calls, one per subsystem."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service import api, hotcache, ops, portal, problems, queueing, ratelimit, security, webdb
from service.config import Settings, load_settings


def _ratelimit_storage(settings: Settings) -> str:
    if settings.redis_url:
        # Counted in memory, shared through Redis in the background: service/ratelimit.py.
        return ratelimit.storage_uri(settings.redis_url)
    return "memory://"


def _prefix(settings: Settings) -> str:
    """The key prefix of this deployment in the broker's Redis."""
    return str(settings.broker_transport_options.get("global_keyprefix", ""))


def share_cache_changes(settings: Settings) -> None:
    """Drop hot-cache entries on this process's changes, and (with a Redis broker) announce
    them to, and hear them from, the other processes: service/hotcache.py."""
    hotcache.install()
    hotcache.connect(settings.redis_url, _prefix(settings) + "hotcache")


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the web app (portal + API) from settings and test overrides."""
    settings = settings or load_settings()
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        GRADSCHOOL=settings,
        MAX_CONTENT_LENGTH=256 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.dev,
        WTF_CSRF_TIME_LIMIT=None,
        # Limits shared by every web process: in the broker's Redis when there is one.
        RATELIMIT_STORAGE_URI=_ratelimit_storage(settings),
        RATELIMIT_KEY_PREFIX=_prefix(settings) + "ratelimit",
        # While that Redis is down the limits count in memory, per process: an outage of the
        # broker must not turn every request into a 500 (submissions are still accepted then).
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    app.config.from_prefixed_env("GRADSCHOOL_FLASK")
    app.config.update(overrides)

    ops.init_app(app)
    share_cache_changes(settings)
    webdb.init_app(app)
    problems.init_app(app)
    security.init_app(app)
    queueing.init_app(app)
    api.init_app(app)
    portal.init_app(app)
    if settings.trust_proxy_hops:
        # Behind that many reverse proxies, each appending to X-Forwarded-For/-Proto: the
        # client's address (for rate limits and logs) and scheme come from them. Never trust
        # the headers without a proxy that sets them, or any client could pick its address.
        hops = settings.trust_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app
