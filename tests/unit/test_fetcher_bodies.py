"""What a body costs the fetcher when a server chooses how to cut it up (a raw TCP
peer on loopback sends chunked bodies in pieces of the test's size)."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from shared.fetch import FetchError
from shared.fetcher import FetchPolicy, PoliteFetcher
from shared.ssrf import AllowList
from tests.loopback import Handler, peer

LIMIT = 10 * 1024 * 1024


def _site(answer: Callable[[asyncio.StreamWriter], Awaitable[None]]) -> Handler:
    """A server answering robots.txt with a 404, and every other GET with `answer`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        try:
            if head.startswith(b"GET /robots.txt "):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                await answer(writer)
            await writer.drain()
        except ConnectionError:
            pass  # the fetcher stopped reading: what a refusal does
        finally:
            writer.close()

    return handler


def _chunked(piece: int, total: int) -> Handler:
    """A server answering every GET but robots.txt with `total` bytes in `piece`-byte chunks."""
    chunk = b"%x\r\n%s\r\n" % (piece, b"x" * piece)
    per_block = max(1, 65536 // len(chunk))
    block = chunk * per_block  # reused: the server allocates nothing per chunk
    blocks, rest = divmod(total // piece, per_block)

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(blocks):
            writer.write(block)
            await writer.drain()
        writer.write(chunk * rest + b"0\r\n\r\n")

    return _site(answer)


def _fetcher() -> PoliteFetcher:
    return PoliteFetcher(
        FetchPolicy(
            user_agent="test",
            max_bytes=LIMIT,
            host_delay=0,
            retries=0,
            allow=AllowList.parse("127.0.0.1"),
        )
    )


async def test_a_body_in_tiny_pieces_is_refused_before_it_costs_its_pieces() -> None:
    # 1 MB in 2-byte chunks, well under the byte limit: half a million events to parse
    # and keep, once each took a Python object and seconds of the event loop.
    async with peer(_chunked(2, 1 << 20)) as base, _fetcher() as fetcher:
        tracemalloc.start()
        try:
            with pytest.raises(FetchError, match="body sent in too many pieces"):
                await fetcher.fetch(f"{base}/page")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # The pieces read before the refusal and the client's buffers, not one object a piece.
    assert peak < 2 << 20


async def test_an_honest_body_in_segment_sized_pieces_is_read_whole() -> None:
    # Near the limit, in pieces of a TCP segment: what a slow link delivers.
    total = LIMIT - LIMIT % 1400
    async with peer(_chunked(1400, total)) as base, _fetcher() as fetcher:
        fetched = await fetcher.fetch(f"{base}/page")
    assert len(fetched.content) == total


async def test_a_streamed_body_of_small_items_is_read_whole() -> None:
    # A streaming server writes a chunk per item: a 6 MB sitemap of 250-byte <url>s.
    total = 6_000_000
    async with peer(_chunked(250, total)) as base, _fetcher() as fetcher:
        fetched = await fetcher.fetch(f"{base}/sitemap.xml")
    assert len(fetched.content) == total


def _gzip_answer(body: bytes) -> Handler:
    """A server answering every GET but robots.txt with `body` as a whole chunked gzip answer."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /robots.txt "):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        else:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            )
        await writer.drain()
        writer.close()

    return handler


async def test_a_gzip_body_cut_short_inside_whole_framing_is_refused() -> None:
    # The HTTP framing ends cleanly, so only the gzip stream shows the page is cut.
    words = b" ".join(b"%d" % (n * n) for n in range(20_000))  # compresses to ~50 KB
    page = b"<html><body><p>" + words + b"</p></body></html>"
    async with peer(_gzip_answer(gzip.compress(page))) as base, _fetcher() as fetcher:
        assert (await fetcher.fetch(f"{base}/whole")).content == page
    async with peer(_gzip_answer(gzip.compress(page)[:-600])) as base, _fetcher() as fetcher:
        with pytest.raises(FetchError, match="ends before its compressed stream does"):
            await fetcher.fetch(f"{base}/cut")


async def test_endless_interim_answers_are_refused_after_a_bounded_read() -> None:
    # httpcore reads interim (1xx) answers for as long as they come: "100 Continue"
    # without end held a core until the fetch's deadline, every try.
    sent = [0]
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 2048

    async def flood(writer: asyncio.StreamWriter) -> None:
        while sent[0] < 1 << 30:  # a gigabyte: the fetch's deadline comes first
            writer.write(interim)
            sent[0] += len(interim)
            await writer.drain()

    async with peer(_site(flood)) as site, _fetcher() as fetcher:
        with pytest.raises(FetchError, match="before the answer's head was whole"):
            await fetcher.fetch(f"{site}/page")
    # Past the bound, only what the kernel's socket buffers took (a few MB): before, it
    # went on to the deadline, hundreds of megabytes.
    assert sent[0] < 64 * 1024 * 1024
