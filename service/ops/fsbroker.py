"""Atomic message files for kombu's filesystem transport (the embedded default's broker).

kombu creates a message file empty and then writes it, while a consumer polling the folder
may already move and read it: the consumer then parses an empty file, and a Celery worker
stops with "Unrecoverable error: JSONDecodeError". Seen here within a minute of pings every
second (each /readyz writes one), and possible for any grading task. Writing under a name the
consumer ignores, then renaming (atomic on POSIX), closes the window. Installed by the web
(service.ops.init_app) and by every worker and sweeper process (worker/observability.py).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


def atomic_put(self: filesystem.Channel, queue: str, payload: Any, **_: Any) -> None:
    """kombu's `_put`, but the message appears under its final name only once it is complete."""
    filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
    final = os.path.join(self.data_folder_out, filename)
    # A leading dot: "partition('.')[2]" of this name never equals "<queue>.msg", so neither
    # _get, _size nor _purge of any queue looks at it.
    partial = os.path.join(self.data_folder_out, f".{filename}.partial")
    try:
        with open(partial, "wb", buffering=0) as f:
            f.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)
    except OSError as exc:
        raise ChannelError(f"Cannot add file {final!r} to directory") from exc


def install() -> None:
    """Patch the filesystem transport of this process (idempotent)."""
    filesystem.Channel._put = atomic_put  # type: ignore[method-assign]
