"""An ASGI app whose requests wait until released: slow routes, as middleware sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.types import Receive, Scope, Send


class HeldApp:
    """Answers 200 once `release` is set; a path ending in /broken raises instead."""

    def __init__(self) -> None:
        self.entered = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.release.wait()
        if scope["path"].endswith("/broken"):
            raise RuntimeError("a handler's bug")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def have_entered(self, count: int) -> Callable[[], Awaitable[bool]]:
        """A condition for tests.waiting.until: `count` requests came in."""

        async def entered() -> bool:
            return self.entered == count

        return entered
