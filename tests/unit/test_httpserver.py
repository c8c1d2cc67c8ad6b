"""The HTTP protocol of the query service and the health servers tells a response in
progress that its client left, pipelined requests behind it or not, and bounds a
request's head in size and time (uvicorn on loopback, no other servers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from shared.health import HealthServer, Readiness
from shared.httpserver import MAX_HEAD_BYTES, PipelineSafeHttpToolsProtocol

REQUEST = b"GET /stream HTTP/1.1\r\nHost: query\r\n\r\n"


class EndlessResponse:
    """An ASGI app that starts a response and never finishes it, as the live ticker does,
    and notes when the server says the client is gone."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone.set()


class QuickToCloseSlowHeads(PipelineSafeHttpToolsProtocol):
    head_seconds = write_seconds = 0.2


@pytest.fixture
async def server() -> AsyncIterator[tuple[EndlessResponse, int]]:
    app = EndlessResponse()
    config = uvicorn.Config(app, http=QuickToCloseSlowHeads, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    # Listening before uvicorn serves it: a connection made sooner waits in the backlog.
    listener = socket.create_server(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    yield app, listener.getsockname()[1]
    server.should_exit = True
    server.force_exit = True
    await serving
    listener.close()


@pytest.mark.parametrize("requests", [1, 2, 5])
async def test_a_closed_connection_reaches_the_response_in_progress(
    server: tuple[EndlessResponse, int], requests: int
) -> None:
    app, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST * requests)  # all at once: the later ones wait behind the first
    await writer.drain()
    await reader.readuntil(b"started\n")
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(app.gone.wait(), timeout=10)


async def test_a_request_head_past_its_size_is_refused_and_the_server_answers_on(
    server: tuple[EndlessResponse, int],
) -> None:
    # uvicorn with httptools kept a request line whole however long: 96 MB grew the
    # process by as much, at a quadratic cost.
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /" + b"a" * (4 * MAX_HEAD_BYTES))
    answer = await asyncio.wait_for(reader.read(), timeout=10)  # to the close
    assert answer.startswith(b"HTTP/1.1 431 ")
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    await asyncio.wait_for(reader.readuntil(b"started\n"), timeout=10)
    writer.close()


@pytest.mark.parametrize("sent", [b"", b"GET /stream HTTP/1.1\r\nHost: qu"])
async def test_a_head_not_complete_in_time_loses_its_connection(
    server: tuple[EndlessResponse, int], sent: bytes
) -> None:
    # A head sent a byte at a time (or not at all) held its connection for ever.
    _, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed, unanswered
    writer.close()


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """GET: answers at once, its body unread, as most routes do (`/slow` after a moment).
    POST: reads the whole body first, and answers its length."""
    if scope["type"] != "http":
        return
    body = b"ok"
    if scope["method"] == "POST":
        length = 0
        while True:
            message = await receive()
            length += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"%d" % length
    elif scope["path"] == "/slow":
        await asyncio.sleep(0.1)
    headers = [(b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def answering() -> AsyncIterator[int]:
    config = uvicorn.Config(_app, http=QuickToCloseSlowHeads, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    listener = socket.create_server(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    yield listener.getsockname()[1]
    server.should_exit = server.force_exit = True
    await serving
    listener.close()


async def test_a_body_trickled_after_its_answer_loses_its_connection(answering: int) -> None:
    # uvicorn drops the rest of a body after the response, and each byte of it stopped
    # the keep-alive timer: a byte every few seconds held the connection for ever.
    reader, writer = await asyncio.open_connection("127.0.0.1", answering)
    writer.write(b"GET / HTTP/1.1\r\nHost: query\r\nContent-Length: 1000000000\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"ok"), timeout=10)

    async def trickle() -> None:
        while not writer.is_closing():
            writer.write(b"x")
            await asyncio.sleep(0.02)  # ten times faster than the bound, for ever

    trickling = asyncio.create_task(trickle())
    try:
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
    finally:
        trickling.cancel()
    writer.close()


async def test_a_body_ended_after_its_answer_does_not_leave_its_connection_idle(
    answering: int,
) -> None:
    # Its last byte stopped uvicorn's keep-alive timer, and nothing armed it again: the
    # connection stayed open, silent, for ever.
    reader, writer = await asyncio.open_connection("127.0.0.1", answering)
    writer.write(b"GET / HTTP/1.1\r\nHost: query\r\nContent-Length: 1\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"ok"), timeout=10)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
    writer.close()


async def test_a_request_pipelined_behind_a_late_body_is_answered(answering: int) -> None:
    # Closing the connection once the late body ended lost the answer to a request sent
    # right behind it, in the same write.
    reader, writer = await asyncio.open_connection("127.0.0.1", answering)
    writer.write(b"GET / HTTP/1.1\r\nHost: query\r\nContent-Length: 10\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"ok"), timeout=10)
    writer.write(b"0123456789GET / HTTP/1.1\r\nHost: query\r\n\r\n")
    second = await asyncio.wait_for(reader.readuntil(b"ok"), timeout=10)
    assert second.startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_a_pipelined_body_its_app_reads_is_not_cut(answering: int) -> None:
    # The bound is for what is left of a body after its own response: a request
    # pipelined behind another, its body read slowly by its app, is answered whole.
    reader, writer = await asyncio.open_connection("127.0.0.1", answering)
    writer.write(
        b"GET /slow HTTP/1.1\r\nHost: query\r\n\r\n"
        b"POST /upload HTTP/1.1\r\nHost: query\r\nContent-Length: 10\r\n\r\n"
    )
    for _ in range(10):
        await asyncio.sleep(0.05)  # the bound here is 0.2 s: past it, in all
        writer.write(b"x")
    answers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n10"), timeout=10)
    assert answers.count(b"HTTP/1.1 200 OK") == 2
    writer.close()


class LargeResponse:
    """Answers `parts` parts of `part_mb` MB (in one message if `whole`), and notes when
    its sending is over, however it ended."""

    def __init__(self, parts: int = 64) -> None:
        self.over = asyncio.Event()
        self.parts = parts
        self.part_mb = 1
        self.whole = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            part = b"x" * (self.part_mb * 1024 * 1024)
            if self.whole:  # one message, the last: nothing waits for the socket
                await send({"type": "http.response.body", "body": part * self.parts})
                return
            for _ in range(self.parts):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            self.over.set()


class Watched(QuickToCloseSlowHeads):
    """Notes when a connection is lost (set anew by the fixture for each test)."""

    lost = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        Watched.lost.set()


@pytest.fixture
async def large() -> AsyncIterator[tuple[asyncio.Event, LargeResponse, int]]:
    app = LargeResponse()
    Watched.lost = asyncio.Event()
    config = uvicorn.Config(app, http=Watched, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    listener = socket.create_server(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    yield Watched.lost, app, listener.getsockname()[1]
    server.should_exit = server.force_exit = True
    await serving
    listener.close()


async def test_a_client_that_reads_nothing_loses_its_connection_and_its_place(
    large: tuple[asyncio.Event, LargeResponse, int],
) -> None:
    # Each write waited for the socket to drain, with no deadline: the request held its
    # place in the process's limits for as long as the client kept the connection, and
    # clients pipelining requests they never read had every other client answered 503.
    lost, app, port = large
    _unread, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)  # and nothing read from here on
    await asyncio.wait_for(app.over.wait(), timeout=30)
    await asyncio.wait_for(lost.wait(), timeout=30)
    writer.close()


async def test_a_connection_closing_after_its_answer_is_dropped_all_the_same(
    large: tuple[asyncio.Event, LargeResponse, int],
) -> None:
    # Not kept alive, its last answer written, uvicorn closes it: a close waits for the
    # unsent bytes, and the connection and its answer were kept for as long as the
    # client stayed (review).
    lost, app, port = large
    app.parts, app.whole = 8, True  # all of it waiting once written: the close comes next
    _unread, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: query\r\nConnection: close\r\n\r\n")
    await asyncio.wait_for(app.over.wait(), timeout=30)
    await asyncio.wait_for(lost.wait(), timeout=30)
    writer.close()


async def test_a_client_that_reads_slowly_gets_the_whole_answer(
    large: tuple[asyncio.Event, LargeResponse, int],
) -> None:
    # Read in parts with pauses, slower than the answer is written but never stopped
    # (review: the deadline set at the first pause dropped it, 4 of 8 MB read).
    _, app, port = large
    app.parts, app.part_mb = 4, 8  # each part written longer than the bound
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: query\r\nConnection: close\r\n\r\n")
    received = 0
    while chunk := await asyncio.wait_for(reader.read(256 * 1024), timeout=30):
        received += len(chunk)
        await asyncio.sleep(0.01)  # about 20 MB/s: 32 MB take longer than the bound
    assert received > 32 * 1024 * 1024  # the body whole, and its head
    writer.close()


async def test_a_health_server_bounds_a_head_too() -> None:
    async def probe() -> Readiness:
        return Readiness({"redis": True})

    health = HealthServer(probe, "127.0.0.1", 0)
    serving = asyncio.create_task(health.serve())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
        writer.write(b"GET /" + b"a" * (4 * MAX_HEAD_BYTES))
        assert (await asyncio.wait_for(reader.read(), timeout=10)).startswith(b"HTTP/1.1 431 ")
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", health.port)
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), timeout=10)).startswith(b"HTTP/1.1 200 ")
        writer.close()
    finally:
        health.stop()
        await serving
