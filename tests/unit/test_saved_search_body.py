"""A saved search's body is bounded in time, and a client that leaves is no error."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import Message

from services.query import following_api


def _request(*messages: Message) -> Request:
    """A POST whose body arrives as `messages`, then never again."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.Event().wait()  # the client sends nothing more
        raise AssertionError

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/saved-searches",
        "headers": [(b"content-length", b"1000")],
    }
    return Request(scope, receive)


async def test_a_body_not_sent_in_time_is_a_408(monkeypatch: pytest.MonkeyPatch) -> None:
    # One byte, then nothing: the connection (and a file descriptor) was held for ever.
    monkeypatch.setattr(following_api, "BODY_SECONDS", 0.2)
    request = _request({"type": "http.request", "body": b"{", "more_body": True})
    with pytest.raises(HTTPException) as refused:
        await following_api._saved_search_body(request)
    assert refused.value.status_code == 408
    # Closed after the answer: kept alive, a byte now and then held it all the same.
    assert refused.value.headers == {"Connection": "close"}


async def test_a_client_that_left_mid_body_is_a_plain_400() -> None:
    # Logged as "Exception in ASGI application", with a traceback, once per client.
    request = _request(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(HTTPException) as refused:
        await following_api._saved_search_body(request)
    assert refused.value.status_code == 400


async def test_a_whole_body_is_read() -> None:
    request = _request({"type": "http.request", "body": b'{"q": "gas"}', "more_body": False})
    assert await following_api._saved_search_body(request) == b'{"q": "gas"}'
