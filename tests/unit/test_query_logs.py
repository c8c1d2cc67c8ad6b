"""What the query service writes to the log store about its clients' requests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from dataclasses import replace
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


async def test_elasticsearch_away_is_one_line_not_one_a_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real client, its node refusing connections (bound, never listening): each
    # search retried twice and marked its node failed three times, each logged.
    with socket.socket() as away:
        away.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ELASTICSEARCH_URL", f"http://127.0.0.1:{away.getsockname()[1]}")
        monkeypatch.setattr(query_app, "make_redis", lambda _: QuietRedis())
        settings = Settings.from_env()
        fixed = {"cache_seconds": 0.0, "rate_limit": 0.0}
        app = query_app.create_app(replace(settings, query=settings.query.model_copy(update=fixed)))
        [handler] = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        out = io.StringIO()
        handler.setStream(out)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://query") as client,
        ):
            statuses = {
                (await client.get("/api/search", params={"q": n})).status_code for n in range(20)
            }

    assert statuses == {503}
    [line] = (json.loads(line) for line in out.getvalue().splitlines())
    assert (line["event"], line["suppressed"]) == ("elasticsearch unavailable", 0)
