"""Operations: /healthz, /readyz, /metrics and JSON logs with request ids (service/ops/views.py).

Kept import-light, so that `python -m service.ops.probe web` (a container health check run every
few seconds) loads neither Flask nor SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """JSON logs with request ids, and the /healthz, /readyz and /metrics endpoints."""
    from service.ops import views

    views.init_app(app)
