"""uvicorn's HTTP protocol, made to tell a response in progress that its client is gone.

uvicorn (0.54, httptools) reports a lost connection to the newest request on it
only. A request pipelined behind a response still being sent is the newest, so
the close reaches a request that never started, and the response in progress
(the live ticker's never ends by itself) goes on writing into a closed socket,
holding its place for good. Here every unfinished request on the connection is
told. h11 keeps the running request as its current one and needs no such fix.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState


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
