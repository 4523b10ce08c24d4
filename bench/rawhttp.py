"""A lean HTTP/1.1 client for the load generator: keep-alive connections, requests sent as
bytes built once, answers read with their Content-Length.

Why not aiohttp (which the GET sampler still uses): the load generator runs on the same two
cores as the system it measures, so every millisecond it spends is taken from the web, the
workers and the databases. With aiohttp the generator cost ~0.9 ms of CPU per POST at 300/s
(~14 % of the whole machine's work per answer); with this client, ~0.55 ms, the rest being
the GET sampler, the pipe to it and the event loop (bench/load.py --client compares them).
It speaks only what the generator needs: one request at a time per connection, answers with
a Content-Length (every answer of the API has one), `Connection: close` honoured.
"""

from __future__ import annotations

import asyncio
from typing import Any

TIMEOUT = 30.0  # seconds for one answer, as the aiohttp client's total timeout


class HttpError(ConnectionError):
    """The connection failed, was closed early, or the answer could not be read."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        try:
            status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise ValueError("an answer without Content-Length")
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        except ValueError as err:
            waiter.set_exception(HttpError(f"unreadable answer: {err}"))
            return
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        waiter.set_result((status, body, b"\r\nconnection: close" in head))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc}"))


class Client:
    """Keep-alive connections to one host, at most `limit` open (more requests wait)."""

    def __init__(self, host: str, port: int, limit: int = 512) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._all: set[_Connection] = set()

    def request_bytes(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> bytes:
        """A whole request, to build once and send many times."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a request built by request_bytes; its status and body. TIMEOUT covers it
        all: the wait for a free slot, connecting and the answer."""
        async with asyncio.timeout(TIMEOUT), self._slots:
            connection = self._take_idle() or await self._connect()
            assert connection.transport is not None
            connection.waiter = asyncio.get_running_loop().create_future()
            connection.transport.write(request)
            try:
                status, body, close = await connection.waiter
            except BaseException:
                self._drop(connection)
                raise
            connection.waiter = None
            if close or connection.lost:
                self._drop(connection)
            else:
                self._idle.append(connection)
            return status, body

    def _take_idle(self) -> _Connection | None:
        """A kept-alive connection the server has not closed meanwhile (writing to one it
        closed would wait for an answer that never comes)."""
        while self._idle:
            connection = self._idle.pop()
            transport = connection.transport
            if connection.lost or transport is None or transport.is_closing():
                self._drop(connection)
                continue
            return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as err:
            raise HttpError(f"cannot connect: {err}") from err
        self._all.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection.transport is not None:
            connection.transport.abort()

    async def close(self) -> None:
        """Close every connection."""
        for connection in list(self._all):
            self._drop(connection)
        self._idle.clear()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()
