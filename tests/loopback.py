"""A real HTTP server on 127.0.0.1 for the ingest tests: routes, a log of requests.

It runs in a thread beside the test's event loop, so the fetcher under test
speaks real HTTP to it: redirects, conditional GET and robots.txt included.
`peer` is the other kind: a raw TCP peer in the test's own loop, for a client
facing a server that misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    body: bytes = b""  # what a POST carried


Route = Callable[[Hit], Reply]


def static(body: bytes, content_type: str, etag: str | None = None) -> Route:
    """A document that answers 304 to a matching If-None-Match."""

    def route(hit: Hit) -> Reply:
        if etag and hit.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        return Reply(200, body, headers)

    return route


def sequence(*replies: Reply) -> Route:
    """Answers in order; the last one repeats."""
    remaining = list(replies)

    def route(_: Hit) -> Reply:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return route


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

            def _answer(self, body: bytes) -> None:
                hit = Hit(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                    body,
                )
                server.hits.append(hit)
                route = server.routes.get(self.path)
                reply = route(hit) if route else Reply(404, b"not found")
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                try:
                    for chunk in [reply.body] if isinstance(reply.body, bytes) else reply.body:
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a body limit does

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def endless(chunk_size: int = 64 * 1024, total: int = 50 * 1024 * 1024) -> Iterator[bytes]:
    """A body of `total` bytes, produced as it is sent (no 50 MB in memory)."""
    chunk = b"<p>" + b"x" * (chunk_size - 3)
    for _ in range(total // chunk_size):
        yield chunk


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def peer(handler: Handler) -> AsyncIterator[str]:
    """The base URL of a TCP peer on 127.0.0.1 that runs `handler` per connection."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """The port of a peer on 127.0.0.1 that accepts connections and never answers: a
    host gone silent, or a node failing over, as a client sees it."""
    server = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
