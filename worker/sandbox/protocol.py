"""Messages between a worker process and its zygote: one JSON object per SOCK_SEQPACKET datagram.

File descriptors (the job, and the pipes the child writes) travel alongside with
SCM_RIGHTS, so the zygote hands them to the child without ever reading a byte of a
job or of its results.
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_MESSAGE = 64 * 1024
MAX_FDS = 8


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one message (and optional file descriptors)."""
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors that came with it; (None, []) when the peer has gone."""
    data, fds, _flags, _address = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data:
        return None, list(fds)
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("sandbox protocol: a message must be a JSON object")
    return message, list(fds)
