"""What the query service writes to the log store about its clients' requests."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from typing import Any

import httpx
import pytest
import uvicorn

from services.query import app as query_app
from shared.settings import Settings
from tests.querynode import Node, QuietRedis

SAVED_SEARCH_ID = "Q2FyYXZhblNlY3JldElkMQ"  # the id alone reads or deletes the search
WORDS = "my private medical question"


async def test_no_request_line_reaches_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server as the service's entry point starts it, serving on a socket of the test's.
    started: dict[str, Any] = {}
    monkeypatch.setattr(query_app, "make_elasticsearch", lambda _: Node())
    monkeypatch.setattr(query_app, "make_redis", lambda _: QuietRedis())
    monkeypatch.setattr(query_app, "settle_after_startup", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    query_app.main(Settings.from_env())
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    started.pop("host"), started.pop("port")
    server = uvicorn.Server(uvicorn.Config(**started))
    with socket.create_server(("127.0.0.1", 0)) as sock:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base) as client:
            await client.get(f"/api/saved-searches/{SAVED_SEARCH_ID}.atom")
            await client.delete(f"/api/saved-searches/{SAVED_SEARCH_ID}")
            await client.get("/api/search", params={"q": WORDS})
        server.should_exit = True
        await serving

    logged = out.getvalue()
    assert SAVED_SEARCH_ID not in logged
    assert "medical" not in logged
