"""How long one URL may hold the fetcher, and what a host that keeps timing out
costs the links after it (raw TCP peers on loopback, timeouts scaled down)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from shared.fetch import FetchError
from shared.fetcher import FetchPolicy, HostDeferred, PoliteFetcher, Validators
from shared.ssrf import AllowList
from tests.loopback import Handler, peer

TIMEOUT = 0.05


def _policy(*, host_delay: float = 0, retries: int = 3, max_redirects: int = 5) -> FetchPolicy:
    return FetchPolicy(
        user_agent="test",
        timeout=TIMEOUT,
        host_delay=host_delay,
        retries=retries,
        max_redirects=max_redirects,
        backoff_base=0.001,
        allow=AllowList.parse("127.0.0.1"),
    )


def _site(pages: list[str], answer: bytes | None) -> Handler:
    """robots.txt missing; any other GET noted in `pages` and answered with `answer`,
    or never (the connection held until the fetcher gives up on it)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /robots.txt "):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        else:
            pages.append(head.split(b" ")[1].decode())
            if answer is None:
                await reader.read()  # until the fetcher hangs up
            else:
                writer.write(answer)
        await writer.drain()
        writer.close()

    return handler


async def test_a_chain_of_redirects_across_sites_ends_at_the_fetchs_deadline() -> None:
    # Each hop cost a robots.txt and the page, each within its own request deadline: a
    # server chaining sites held one URL for most of an hour. Here each site's pace
    # (0.3 s between requests) is what the hops cost, the fetch's deadline 0.75 s.
    sites = 13
    pages: list[list[str]] = [[] for _ in range(sites)]
    async with AsyncExitStack() as stack:
        bases: list[str] = []
        for n in reversed(range(sites)):
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"
            if bases:
                answer = b"HTTP/1.1 302 Found\r\nLocation: %s/next\r\nContent-Length: 0\r\n\r\n"
                answer %= bases[0].encode()
            bases.insert(0, await stack.enter_async_context(peer(_site(pages[n], answer))))
        fetcher = await stack.enter_async_context(
            PoliteFetcher(_policy(host_delay=0.3, max_redirects=sites))
        )
        with pytest.raises(FetchError, match=r"not fetched within 0\.75s in all"):
            await fetcher.fetch(f"{bases[0]}/start")
    assert sum(1 for seen in pages if seen) <= 3  # of 13 sites


async def test_a_host_where_two_urls_timed_out_fails_its_next_links_at_once() -> None:
    # Each link to a host that never answers cost its retries' timeouts again: a feed's
    # hundred links to it held the poll for hours. Now the host is deferred, once a
    # second URL of it has timed out as the first did (one such URL, however often, not).
    pages: list[str] = []
    async with (
        peer(_site(pages, None)) as site,
        PoliteFetcher(_policy(retries=2)) as fetcher,
    ):
        for path in ("/article-1", "/article-1", "/article-2"):
            with pytest.raises(FetchError, match="timed out"):
                await fetcher.fetch(f"{site}{path}")
        with pytest.raises(HostDeferred, match="two of its URLs kept timing out"):
            await fetcher.fetch(f"{site}/article-3")
    assert pages == ["/article-1"] * 6 + ["/article-2"] * 3


async def test_one_page_that_never_answers_costs_only_its_own_fetch() -> None:
    # Its host, feed included, was deferred for minutes after it, and the page is asked
    # for at every poll: a site with one broken page was never read again.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if b" /broken " in await reader.readuntil(b"\r\n\r\n"):
            await reader.read()  # never answered: until the fetcher hangs up
        else:  # robots.txt (of no rules) included
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage")
            await writer.drain()
        writer.close()

    async with peer(handler) as site, PoliteFetcher(_policy(retries=1)) as fetcher:
        for _ in range(2):  # one poll after another
            with pytest.raises(FetchError, match="timed out"):
                await fetcher.fetch(f"{site}/broken")
            assert (await fetcher.fetch(f"{site}/feed")).content == b"page"
            assert (await fetcher.fetch(f"{site}/article")).content == b"page"


async def test_a_304_to_a_request_that_asked_about_no_version_is_an_error() -> None:
    # Taken as "not modified", the article behind it was never read nor published, and
    # counted unchanged at every poll (RFC 9110 §15.4.5: only a conditional GET gets 304).
    pages: list[str] = []
    not_modified = b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'
    async with peer(_site(pages, not_modified)) as site, PoliteFetcher(_policy()) as fetcher:
        with pytest.raises(FetchError, match="304 to a request that was not conditional"):
            await fetcher.fetch(f"{site}/article")
        asked = await fetcher.fetch(f"{site}/article", Validators(etag='"v1"'))
    assert asked.not_modified
    assert pages == ["/article", "/article"]
