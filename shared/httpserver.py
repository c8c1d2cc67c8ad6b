"""uvicorn's HTTP protocol, made to tell a response in progress that its client is gone,
and to bound what a request's head may cost: the query service's and every health
server's.

uvicorn (0.54, httptools) reports a lost connection to the newest request on it
only. A request pipelined behind a response still being sent is the newest, so
the close reaches a request that never started, and the response in progress
(the live ticker's never ends by itself) goes on writing into a closed socket,
holding its place for good. Here every unfinished request on the connection is
told. h11 keeps the running request as its current one and needs no such fix.

Nor does uvicorn bound a request's line and headers with httptools: a request line of
96 MB was kept whole (and joined at a quadratic cost), and a head sent a byte at a
time held its connection for ever, as the keep-alive timer stops at the first byte.
A head is refused past MAX_HEAD_BYTES (431, as nginx's buffers would) and its
connection closed once HEAD_SECONDS pass before it is complete.

Nor does it bound a body the answer did not wait for: uvicorn reads and drops the rest
of it after the response, and every byte stops the keep-alive timer, so a request
declaring a gigabyte and sending a byte every few seconds held its connection for
ever, and a client as many connections as the process has files. The rest of a body
gets HEAD_SECONDS after the response, which its bytes do not extend.

Nor does it bound a client that stops reading: a response's write waits for the socket
to drain with no deadline, holding the request's place in the process's and the
client's limits, so clients that pipelined requests and read nothing took every place
and every other client was answered 503 until they left. A connection whose answers
waiting to be sent do not shrink for WRITE_SECONDS is dropped, and its requests told
their client is gone (nginx's send_timeout, between two writes, is 60 s). They shrink
only once the kernel's buffers have room again, so a client that reads steadily but
very slowly (on loopback, under about 60 KB/s) can be dropped too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

# A request line and headers together; nginx reads at most 4 x 8 KB.
MAX_HEAD_BYTES = 64 * 1024
HEAD_SECONDS = 10.0
WRITE_SECONDS = 30.0
LINGER_SECONDS = 1.0
_REFUSAL = b"request line or headers too long\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL)
)


class PipelineSafeHttpToolsProtocol(HttpToolsProtocol):
    head_seconds = HEAD_SECONDS
    write_seconds = WRITE_SECONDS

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._unfinished: list[RequestResponseCycle] = []
        self._head_bytes: int | None = 0  # None while no head is being read
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False
        # The request whose body is being read (None between messages), and the bound on
        # what is left of it once its response has gone out.
        self._reading: RequestResponseCycle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._unsent = 0  # bytes waiting when the deadline was set

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._start_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped until the close, or the refusal would be a reset
        if self._head_bytes is not None:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
        super().data_received(data)

    def _start_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_seconds, self._too_slow)

    def _refuse_head(self) -> None:
        self.logger.warning("request head over %d bytes refused", MAX_HEAD_BYTES)
        self.transport.write(_TOO_LARGE)
        self._refused = True
        # Closed a moment later: closing with the rest of the head unread would reset
        # the connection, and the client might never read why.
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _too_slow(self) -> None:
        if self._head_bytes is not None and not self.transport.is_closing():
            self.logger.warning("request head not complete in %gs: closed", self.head_seconds)
            self.transport.close()

    def on_message_begin(self) -> None:
        # A keep-alive timer armed when the body before ended (on_message_complete) is
        # for an idle connection: this one has a request coming.
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._head_bytes = 0
        self._start_head_deadline()

    def on_message_complete(self) -> None:
        reading, self._reading = self._reading, None
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None
        super().on_message_complete()
        if (
            reading is not None
            and reading.response_complete
            and not self.pipeline
            and not self.transport.is_closing()
        ):
            # The rest of a body its response did not wait for, read: uvicorn's keep-alive
            # timer stopped at its bytes, and nothing armed it again, so the connection
            # stayed open and silent for ever. Armed as uvicorn arms it after a response
            # (closing instead lost the answer to a request pipelined behind the body).
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Only for the request whose body is being read (not one pipelined behind it).
        reading = self._reading
        if (
            reading is not None
            and reading.response_complete
            and self._body_deadline is None
            and not self.transport.is_closing()
        ):
            self._body_deadline = self.loop.call_later(self.head_seconds, self._body_too_slow)

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self._reading is not None and not self.transport.is_closing():
            self.logger.warning(
                "request body not complete %gs after its response: closed", self.head_seconds
            )
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._set_write_deadline()

    def _set_write_deadline(self) -> None:
        self._unsent = self.transport.get_write_buffer_size()
        self._write_deadline = self.loop.call_later(self.write_seconds, self._not_reading)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _not_reading(self) -> None:
        self._write_deadline = None
        unsent = self.transport.get_write_buffer_size()
        if unsent and unsent < self._unsent:
            self._set_write_deadline()  # read from meanwhile, if slowly: it may go on
        elif unsent:
            self.logger.warning("client read nothing for %gs: dropped", self.write_seconds)
            # Aborted, not closed: a close (uvicorn's, after a last answer on a connection
            # not kept alive, too) waits for the unsent bytes, for ever here.
            self.transport.abort()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:
            self._unfinished = [c for c in self._unfinished if not c.response_complete]
            self._unfinished.append(self.cycle)
            self._reading = self.cycle

    def connection_lost(self, exc: Exception | None) -> None:
        # As uvicorn does for the newest request, for each one still unanswered.
        for cycle in self._unfinished:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self._unfinished = []
        for deadline in (self._head_deadline, self._body_deadline, self._write_deadline):
            if deadline is not None:
                deadline.cancel()
        super().connection_lost(exc)
