"""The HTTP Elasticsearch node (shared/esnode.py): what the transport relies on.

Against the real Elasticsearch: answers, errors, HEAD, gzip and kept-alive connections
(counted at a relay of the test's own). Against a local TCP peer that
misbehaves on purpose: a node that never answers, one that hangs up mid-answer, one
that closes after each answer, and a request cancelled before its answer came.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from elastic_transport import ConnectionError, ConnectionTimeout
from elasticsearch import AsyncElasticsearch, NotFoundError

from shared import esnode
from shared.clients import make_elasticsearch
from shared.esnode import HttpNode
from shared.settings import ElasticsearchSettings
from tests.conftest import Namespace
from tests.loopback import Handler, peer
from tests.waiting import until

JSON = {"content-type": "application/json"}


def client(url: str, **options: object) -> AsyncElasticsearch:
    es = make_elasticsearch(ElasticsearchSettings(url=url))
    return es.options(**options) if options else es  # type: ignore[arg-type]


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()


@asynccontextmanager
async def relay_to(url: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP relay to the node at `url`, and the count of connections made to it: the
    node's own count takes in every other client's, another test worker's among them."""
    target = urlsplit(url)
    opened = [0]

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened[0] += 1
        node = await asyncio.open_connection(target.hostname, target.port)
        await asyncio.gather(_pipe(reader, node[1]), _pipe(node[0], writer))

    async with peer(relay) as relayed:
        yield relayed, opened


def test_http_and_https_urls_take_the_node() -> None:
    for url in ("http://127.0.0.1:9200", "https://127.0.0.1:9200"):
        es = make_elasticsearch(ElasticsearchSettings(url=url))
        assert isinstance(es.transport.node_pool.get(), HttpNode)


async def test_requests_share_kept_alive_connections() -> None:
    async with relay_to(os.environ["ELASTICSEARCH_URL"]) as (url, opened):
        fresh = make_elasticsearch(ElasticsearchSettings(url=url))
        try:
            for _ in range(20):
                await fresh.cluster.health()
                # A HEAD answer has no body: its connection is kept too.
                await fresh.indices.exists(index="caravan-no-such-index")
            assert opened == [1]
            # 30 at once: no more connections than the node's limit (10 by default).
            await asyncio.gather(*(fresh.cluster.health() for _ in range(30)))
            assert opened[0] <= 1 + 10
        finally:
            await fresh.close()


async def test_answers_errors_and_head(es: AsyncElasticsearch, namespace: Namespace) -> None:
    index = f"{namespace.index_prefix}node"
    assert not await es.indices.exists(index=index)
    with pytest.raises(NotFoundError):
        await es.get(index=index, id="1")
    await es.index(index=index, id="1", document={"title": "Ташкент"}, refresh=True)
    # A HEAD answer carries a length but no body: the next answer must be its own.
    assert await es.indices.exists(index=index)
    assert (await es.get(index=index, id="1"))["_source"] == {"title": "Ташкент"}
    assert await es.exists(index=index, id="1")
    assert not await es.exists(index=index, id="2")
    assert (await es.count(index=index))["count"] == 1


async def test_gzip_both_ways(namespace: Namespace, es: AsyncElasticsearch) -> None:
    # `es` deletes the test's indices afterwards.
    index = f"{namespace.index_prefix}gzip"
    compressed = AsyncElasticsearch(
        os.environ["ELASTICSEARCH_URL"], node_class=HttpNode, http_compress=True
    )
    try:
        body = {"title": "Самарканд " * 500}
        await compressed.index(index=index, id="1", document=body, refresh=True)
        answer = await compressed.get(index=index, id="1")
        assert answer["_source"] == body
        assert answer.meta.headers.get("content-encoding") == "gzip"
    finally:
        await compressed.close()


@pytest.mark.parametrize("opaque_id", ["a\r\nx-forged: 1", "a\nb", "a\x00b", "a\x0bb"])
async def test_a_control_character_in_a_header_is_refused(opaque_id: str) -> None:
    es = client("http://127.0.0.1:9")  # refused before any connection is made
    try:
        with pytest.raises(ValueError, match="control character"):
            await es.options(opaque_id=opaque_id).cluster.health()
    finally:
        await es.close()


async def test_header_values_beyond_latin_1_go_and_come_back_as_utf_8(
    es: AsyncElasticsearch,
) -> None:
    # Elasticsearch echoes X-Opaque-Id: the value must survive both ways.
    answer = await es.options(opaque_id="Ташкент «дом»").cluster.health()
    assert answer.meta.headers["x-opaque-id"] == "Ташкент «дом»"


@asynccontextmanager
async def talking_to(handler: Handler, **options: Any) -> AsyncIterator[AsyncElasticsearch]:
    """A client of a local peer run by `handler`, without the transport's retries: what
    the node itself does is what the test sees."""
    async with peer(handler) as url:
        es = client(url, max_retries=0, **options)
        try:
            yield es
        finally:
            await es.close()


def answer(body: bytes, *, close: bool = False) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        f"x-elastic-product: Elasticsearch\r\ncontent-length: {len(body)}\r\n"
    )
    return (head + ("connection: close\r\n" if close else "") + "\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_a_node_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up

    async with talking_to(silent, request_timeout=0.3) as es:
        with pytest.raises(ConnectionTimeout):
            await es.cluster.health()


async def test_a_hang_up_mid_answer_is_a_connection_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"status": "green"}')[:-5])
        await writer.drain()
        writer.close()

    async with talking_to(hang_up) as es:
        with pytest.raises(ConnectionError):
            await es.cluster.health()


async def test_a_node_closing_after_each_answer_is_reconnected() -> None:
    served = 0

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(answer(b'{"n": %d}' % served, close=True))
        await writer.drain()
        writer.close()

    async with talking_to(once) as es:
        answers = [(await es.perform_request("GET", "/n")).body["n"] for _ in range(3)]
    assert answers == [1, 2, 3]


async def test_a_cancelled_request_leaves_no_answer_behind() -> None:
    """The late answer of a cancelled request must not be read as the next one's."""
    late_arrived, prompt_arrived, late_sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def late_then_prompt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionResetError):
                return
            if b"/late" in request:
                late_arrived.set()
                # Held until a later request has come (on whichever connection), so
                # that request would read this answer if it shared the connection.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(prompt_arrived.wait(), 2)
                writer.write(answer(b'{"which": "late"}'))
                late_sent.set()
            else:
                prompt_arrived.set()
                writer.write(answer(b'{"which": "prompt"}'))
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async with talking_to(late_then_prompt, request_timeout=5) as es:
        late = asyncio.create_task(es.perform_request("GET", "/late"))
        await late_arrived.wait()
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        replies = [(await es.perform_request("GET", "/prompt")).body]
        await late_sent.wait()
        replies += [(await es.perform_request("GET", "/prompt")).body for _ in range(2)]
    assert replies == [{"which": "prompt"}] * 3


def answered(raw: bytes) -> Handler:
    """A peer that answers every request on a connection with `raw`, as it is."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await read_request(reader)
                writer.write(raw)
                await writer.drain()

    return handler


async def test_an_interim_answer_is_skipped_for_the_final_one() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    async with talking_to(answered(interim + answer(b'{"n": 1}'))) as es:
        replies = [(await es.perform_request("GET", "/")).body for _ in range(3)]
        head = await es.perform_request("HEAD", "/")
    assert replies == [{"n": 1}] * 3
    assert head.meta.status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n",
        # A transfer coding that does not end in chunked leaves the end to the close too.
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: identity\r\n",
    ],
)
async def test_an_answer_ended_by_the_close_is_read_whole(raw: bytes) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw + b'x-elastic-product: Elasticsearch\r\n\r\n{"status": "green"}')
        await writer.drain()
        writer.close()

    async with talking_to(until_close) as es:
        assert (await es.cluster.health())["status"] == "green"


async def test_a_broken_gzip_answer_is_a_connection_error() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope"
    )
    async with talking_to(answered(head)) as es:
        with pytest.raises(ConnectionError) as failed:
            await es.cluster.health()
        assert "not gzip" in failed.value.message


async def test_a_timeout_of_zero_is_no_timeout() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.2)
        writer.write(answer(b'{"status": "green"}'))
        await writer.drain()

    async with talking_to(slow, request_timeout=0) as es:
        assert (await es.cluster.health())["status"] == "green"


@pytest.mark.parametrize(
    ("first", "extra"),
    [
        ("GET", b"HTTP/1.1 200 OK\r\ncon"),
        ("GET", answer(b'{"connection": 0}')),
        # In the same read as a HEAD answer, which has a length but no body.
        ("HEAD", b"HTTP/1.1 200 OK\r\ncon"),
    ],
)
async def test_bytes_nobody_asked_for_retire_the_connection(first: str, extra: bytes) -> None:
    """An answer, or half of one, that nobody asked for must not become the next one's."""
    connections = 0

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                request = await read_request(reader)
                body = b"" if request.startswith(b"HEAD") else b'{"connection": %d}' % number
                writer.write(answer(body) + extra)
                await writer.drain()

    async with talking_to(chatty) as es:
        assert (await es.perform_request(first, "/")).meta.status == 200
        replies = [(await es.perform_request("GET", "/")).body for _ in range(2)]
    assert replies == [{"connection": 2}, {"connection": 3}]


async def test_idle_connections_are_dropped_after_the_keep_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await answered(answer(b"{}"))(reader, writer)

    async with talking_to(counted) as es:
        await es.perform_request("GET", "/")
        await es.perform_request("GET", "/")
        assert connections == 1
        monkeypatch.setattr(esnode, "KEEPALIVE_SECONDS", 0.0)
        await es.perform_request("GET", "/")
        assert connections == 2


@pytest.mark.parametrize(("method", "repeated"), [("PUT", True), ("GET", True), ("POST", False)])
async def test_a_kept_alive_connection_closed_as_a_request_comes(
    method: str, repeated: bool
) -> None:
    """The keep-alive race: the far side closes an idle connection as a request goes out.
    A request that may be repeated goes again on a new connection; others fail, for
    the transport to retry or not."""

    async def closes_the_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_request(reader)
            writer.write(answer(b'{"n": 1}'))
            await writer.drain()
            await read_request(reader)
            writer.transport.abort()

    async with talking_to(closes_the_second) as es:
        await es.perform_request(method, "/", body=b"{}", headers=JSON)
        if repeated:
            assert (await es.perform_request(method, "/", body=b"{}", headers=JSON)).body
        else:
            with pytest.raises(ConnectionError):
                await es.perform_request(method, "/", body=b"{}", headers=JSON)


async def test_an_answer_cut_short_by_closing_the_client_is_no_answer() -> None:
    """An answer ended by the connection's close does not count as whole when this side
    closed it, and the request in flight is not sent again on a new connection."""
    connections, cut = 0, asyncio.Event()

    async def slow_to_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_request(reader)
            writer.write(answer(b"{}"))  # the first, for the connection to be reused
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nx-elastic-product: Elasticsearch\r\n"
                b'content-type: application/json\r\nconnection: close\r\n\r\n{"partial": '
            )
            await writer.drain()
            cut.set()
            await reader.read()

    async with talking_to(slow_to_end) as es:
        await es.perform_request("GET", "/")
        pending = asyncio.create_task(es.perform_request("GET", "/"))
        await cut.wait()
        node = es.transport.node_pool.get()
        assert isinstance(node, HttpNode)

        async def head_read() -> bool:  # the client has the head: the body runs to the close
            return any(connection.heard for connection in node._open)

        await until(head_read, "the answer's head read")
        await es.close()
        with pytest.raises(ConnectionError):
            await pending
    assert connections == 1


async def test_an_upgrade_answer_is_a_connection_error(caplog: pytest.LogCaptureFixture) -> None:
    upgrade = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: x\r\n\r\n"
    async with talking_to(answered(upgrade)) as es:
        with pytest.raises(ConnectionError):
            await es.perform_request("GET", "/")
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelname == "ERROR"]


async def test_idle_connections_are_closed_when_their_keep_alive_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without any request after them: a timer retires them, not only the next request."""
    monkeypatch.setattr(esnode, "KEEPALIVE_SECONDS", 0.2)
    arrived, closed = asyncio.Semaphore(0), asyncio.Semaphore(0)
    go = asyncio.Event()

    async def three_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_request(reader)
            arrived.release()
            await go.wait()  # held until all three connections are open
            writer.write(answer(b"{}"))
            await writer.drain()
            await reader.read()  # until the client closes it
        closed.release()

    async with talking_to(three_at_once) as es:
        requests = [asyncio.create_task(es.perform_request("GET", "/")) for _ in range(3)]
        for _ in range(3):
            await arrived.acquire()
        go.set()
        await asyncio.gather(*requests)
        async with asyncio.timeout(5):
            for _ in range(3):
                await closed.acquire()
