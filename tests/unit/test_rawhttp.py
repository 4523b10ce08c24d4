"""The load generator's HTTP client (bench/rawhttp.py) against a real socket server: answers
read whole however they are split, connections kept alive and reused, `Connection: close`
honoured, and every way an answer can go wrong reported as an HttpError, never a hang."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from bench import rawhttp

T = TypeVar("T")
Handler = Callable[[socket.socket, bytes], bool]  # answers one request; False: stop serving


def _request(conn: socket.socket, pending: bytearray) -> bytes | None:
    """One whole request (head and Content-Length body) from the connection, or None."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    end = pending.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(pending[:end]).split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(pending) < end + length:
        pending += conn.recv(65536)
    request = bytes(pending[: end + length])
    del pending[: end + length]
    return request


class Server:
    """A socket server on loopback; each connection's requests go to `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        pending = bytearray()
        with conn:
            while (request := _request(conn, pending)) is not None:
                self.requests.append(request)
                if not self.handler(conn, request):
                    return


Serve = Callable[[Handler], Server]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[Server] = []

    def start(handler: Handler) -> Server:
        servers.append(Server(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.sock.close()


def _json_answer(conn: socket.socket, request: bytes) -> bool:
    body = json.dumps({"echo": request.split(b"\r\n\r\n", 1)[1].decode()}).encode()
    head = f"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    conn.sendall(head.encode() + b"\r\n\r\n" + body)
    return True


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` to its end on an event loop of its own, in a thread of its own: this
    thread may have a loop running already (the browser tests' Playwright leaves one)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: asyncio.run(asyncio.wait_for(main(), 20))).result()


def _send_all(port: int, requests: list[bytes]) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        async with rawhttp.Client("127.0.0.1", port) as client:
            return [await client.send(r) for r in requests]

    return _run(run)


def test_answers_are_read_whole_and_one_connection_serves_them_in_turn(serve: Serve) -> None:
    server = serve(_json_answer)
    client = rawhttp.Client("127.0.0.1", server.port)
    request = client.request_bytes("POST", "/api/v1/x", {"Authorization": "Bearer t"}, b'{"w": 1}')
    answers = _send_all(server.port, [request] * 3)
    assert answers == [(202, json.dumps({"echo": '{"w": 1}'}).encode())] * 3
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer t\r\nContent-Length: 8\r\n\r\n" in server.requests[0]


def test_an_answer_split_in_pieces_is_put_together(serve: Serve) -> None:
    def trickle(conn: socket.socket, _: bytes) -> bool:
        answer = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nX-A: b\r\n\r\nhello world"
        for i in range(0, len(answer), 7):
            conn.sendall(answer[i : i + 7])
            threading.Event().wait(0.005)
        return True

    server = serve(trickle)
    assert _send_all(server.port, [b"GET / HTTP/1.1\r\n\r\n"] * 2) == [(200, b"hello world")] * 2
    assert server.connections == 1


def test_connection_close_is_honoured(serve: Serve) -> None:
    def closing(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 429 Too Many\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno")
        return False

    server = serve(closing)
    assert _send_all(server.port, [b"GET / HTTP/1.1\r\n\r\n"] * 2) == [(429, b"no")] * 2
    assert server.connections == 2


def test_a_kept_connection_the_server_closed_is_not_used_again(serve: Serve) -> None:
    def answer_then_hang_up(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False  # closes, without saying so in the answer (an idle timeout)

    server = serve(answer_then_hang_up)

    async def run() -> list[tuple[int, bytes]]:
        async with rawhttp.Client("127.0.0.1", server.port) as client:
            first = await client.send(b"GET / HTTP/1.1\r\n\r\n")
            await asyncio.sleep(0.2)  # the close arrives while the connection is idle
            return [first, await client.send(b"GET / HTTP/1.1\r\n\r\n")]

    assert _run(run) == [(200, b"ok")] * 2
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 2xx OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # then the server hangs up
        b"",  # the server hangs up at once
    ],
    ids=["no content-length", "bad status", "cut short", "hung up"],
)
def test_an_unreadable_answer_is_an_http_error(serve: Serve, answer: bytes) -> None:
    def bad(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(answer)
        return False

    server = serve(bad)
    with pytest.raises(rawhttp.HttpError):
        _send_all(server.port, [b"GET / HTTP/1.1\r\n\r\n"])


def test_no_server_is_an_http_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it
    with pytest.raises(rawhttp.HttpError):
        _send_all(port, [b"GET / HTTP/1.1\r\n\r\n"])
