"""uvicorn's HTTP protocol, made to tell a response in progress that its client is gone,
and to write a response's head and its body in one go.

uvicorn (0.54, httptools) reports a lost connection to the newest request on it
only. A request pipelined behind a response still being sent is the newest, so
the close reaches a request that never started, and the response in progress
(the live ticker's never ends by itself) goes on writing into a closed socket,
holding its place for good. Here every unfinished request on the connection is
told. h11 keeps the running request as its current one and needs no such fix.

uvicorn writes the status line and headers to the socket as soon as the app starts
its response, and the body when it comes: two writes, two system calls and two
segments for the reader to wake up to, where an answer made in one piece (every JSON
answer, every page) could be one. Here the head waits for the body's first part and
goes out with it in one write; if no body follows within the same turn of the event
loop (a stream that waits for its first event), the head goes out alone then, as
before. The bytes on the wire are the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState


class _Held:
    """What uvicorn writes for a response's head, kept instead of written."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _Prefixed:
    """The connection's transport, the held head put in front of the next write."""

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self.transport = transport
        self.head = head

    def write(self, data: bytes) -> None:
        self.transport.write(self.head + data)
        self.head = b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteCycle(RequestResponseCycle):
    """A request whose response head is written together with its body's first part."""

    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started and not self.disconnected:
            transport, held = self.transport, _Held()
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._head = held.data
            asyncio.get_running_loop().call_soon(self._flush_head)
            return
        if kind == "http.response.body" and self._head is not None:
            transport, head = self.transport, self._head
            self._head = None
            if self.disconnected:
                await super().send(message)
                return
            prefixed = _Prefixed(transport, head)
            self.transport = prefixed  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
                if prefixed.head and not self.disconnected:  # nothing written (HEAD)
                    transport.write(prefixed.head)
            return
        await super().send(message)

    def _flush_head(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self.disconnected:
                self.transport.write(head)


class PipelineSafeHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._unfinished: list[RequestResponseCycle] = []

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:
            # Its ASGI task reads `send` when it runs, which is later: the class is
            # in place by then (an upgrade to a websocket makes no cycle).
            self.cycle.__class__ = OneWriteCycle
            self._unfinished = [c for c in self._unfinished if not c.response_complete]
            self._unfinished.append(self.cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        # As uvicorn does for the newest request, for each one still unanswered.
        for cycle in self._unfinished:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self._unfinished = []
        super().connection_lost(exc)
