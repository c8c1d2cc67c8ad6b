"""What the fetcher keeps of many hosts' robots.txt (raw TCP peers on loopback, one
origin each)."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from typing import Any

import pytest

from shared import fetcher as fetcher_module
from shared.fetcher import FetchPolicy, PoliteFetcher
from shared.ssrf import AllowList
from tests.loopback import Handler, peer

# Without pauses or retries, the test's own peers on loopback allowed.
LOOPBACK = FetchPolicy(
    user_agent="test", host_delay=0, retries=0, allow=AllowList.parse("127.0.0.1")
)

# A group of 2,000 rules, about 24,000 characters: well under a host's 5,000.
ROBOTS = "User-agent: *\n" + "".join(f"Disallow: /private-{n:05d}/\n" for n in range(2000))


def _ok(body: str) -> bytes:
    """A 200 answer of `body`, as raw HTTP."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode())


ROBOTS_ANSWER = _ok(ROBOTS)


def _robots_asked(asked: list[str]) -> int:
    return asked.count("/robots.txt")


async def test_the_rules_of_many_hosts_together_stay_within_their_weight(
    monkeypatch: Any,
) -> None:
    # Each host's rules were kept for a day, 10,000 hosts of them: hosts of 5,000 long
    # wildcard rules (9 MiB each, and wildcard DNS makes hosts free) grew the process
    # past any bound. Room here for three hosts' rules: the oldest are read again.
    group = len(ROBOTS) - len("User-agent: *\n")
    monkeypatch.setattr(fetcher_module, "_ROBOTS_MAX_CHARS", 3 * group + 100)
    asked: list[list[str]] = [[] for _ in range(5)]
    async with AsyncExitStack() as stack:
        sites = [
            await stack.enter_async_context(peer(_robots(ROBOTS_ANSWER, paths))) for paths in asked
        ]
        fetcher = await stack.enter_async_context(PoliteFetcher(LOOPBACK))
        for site in sites:
            await fetcher.fetch(f"{site}/news")
        await fetcher.fetch(f"{sites[4]}/news")
        await fetcher.fetch(f"{sites[0]}/news")
        with pytest.raises(fetcher_module.Refused):
            await fetcher.fetch(f"{sites[0]}/private-00001/")
    # Read once each, the newest kept; the first host's forgotten and read again.
    assert [_robots_asked(paths) for paths in asked] == [2, 1, 1, 1, 1]


async def test_one_site_however_its_urls_spell_it_has_one_robots_txt_and_one_gate() -> None:
    # Userinfo made other sites of one (so did a default port written out, or a trailing
    # dot): a feed's links set the crawl of a host free of its Crawl-delay.
    asked: list[str] = []
    async with peer(_robots(ROBOTS_ANSWER, asked)) as site, PoliteFetcher(LOOPBACK) as fetcher:
        port = site.rsplit(":", 1)[1]
        for spelling in (
            site,
            f"http://u1@127.0.0.1:{port}",
            f"http://u2:secret@127.0.0.1:{port}",
        ):
            await fetcher.fetch(f"{spelling}/news")
    assert _robots_asked(asked) == 1  # and its gate, kept by the same name


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://News.Example.org./a", "https://news.example.org"),
        ("https://u:p@news.example.org:443/a", "https://news.example.org"),
        ("http://news.example.org:80/a", "http://news.example.org"),
        ("http://news.example.org:8080/a", "http://news.example.org:8080"),
        ("http://[::1]:80/a", "http://[::1]"),
        ("http://example。com/a", "http://example.com"),
        ("http://Example．COM./a", "http://example.com"),
        ("http://bücher.example/a", "http://xn--bcher-kva.example"),
        ("http://xn--bcher-kva.example/a", "http://xn--bcher-kva.example"),
        # Numbers for one address, as the resolver reads them.
        ("http://2130706433/a", "http://127.0.0.1"),
        ("http://0x7f.1/a", "http://127.0.0.1"),
        ("http://[::ffff:127.0.0.1]/a", "http://[::ffff:7f00:1]"),
        ("http://[0:0:0:0:0:ffff:7f00:1]/a", "http://[::ffff:7f00:1]"),
    ],
)
def test_a_sites_spellings_are_one_origin(url: str, origin: str) -> None:
    assert fetcher_module._origin(url) == origin


def test_a_port_past_65535_is_no_url() -> None:
    # httpx takes it and the resolver wraps it (:65616 dials :80): another origin of
    # one site for every multiple of 65,536.
    with pytest.raises(ValueError, match="past 65535"):
        fetcher_module._origin("http://site.kz:65616/a")


async def test_hosts_deferred_for_long_are_not_scanned_again_at_every_new_host(
    monkeypatch: Any,
) -> None:
    # Hosts that answered 429 with an hour's Retry-After are not idle: past the cap,
    # every new host swept them all again (5 ms each at 10,000), the loop's time growing
    # with the hosts deferred. Sweeps now come once the hosts kept have doubled.
    monkeypatch.setattr(fetcher_module, "_MAX_HOSTS", 4)
    sweeps: list[int] = []
    async with PoliteFetcher(FetchPolicy(user_agent="test")) as fetcher:
        sweep = fetcher._forget_idle_hosts

        def counted() -> None:
            sweeps.append(len(fetcher._gates))
            sweep()

        monkeypatch.setattr(fetcher, "_forget_idle_hosts", counted)
        for n in range(40):
            fetcher._gate(f"http://deferred-{n}.example").defer(3600)
        assert len(fetcher._gates) == 40  # none idle: none forgotten
        assert sweeps == [4, 8, 16, 32]
        for n in range(40, 45):  # idle ones: forgotten at the next sweep
            fetcher._gate(f"http://idle-{n}.example")
        fetcher._sweep_at = len(fetcher._gates)
        fetcher._gate("http://one-more.example")
    assert sweeps[-1] == 45
    assert len(fetcher._gates) == 41


def _robots(answer: bytes, asked: list[str]) -> Handler:
    """Answers robots.txt with `answer`, any page with a word; notes what was asked."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        asked.append(head.split(b" ")[1].decode())
        if head.startswith(b"GET /robots.txt "):
            writer.write(answer)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage")
        with contextlib.suppress(ConnectionError):  # the fetcher read what it needed
            await writer.drain()
        writer.close()

    return handler


async def test_a_robots_txt_answered_429_shuts_its_host_for_as_long_as_it_asked(
    monkeypatch: Any,
) -> None:
    # Read as a missing robots.txt, a rate limit allowed everything for a day, and the
    # Retry-After was not heard: 429 is the host asking us to slow down, not an answer.
    monkeypatch.setattr(fetcher_module, "_ROBOTS_UNREACHABLE_TTL", 0.0)
    asked: list[str] = []
    slow_down = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n"
    async with peer(_robots(slow_down, asked)) as site, PoliteFetcher(LOOPBACK) as fetcher:
        with pytest.raises(fetcher_module.Refused, match=r"robots\.txt unreachable"):
            await fetcher.fetch(f"{site}/news")
        # Its rules forgotten at once here: read again only once the hour has passed.
        with pytest.raises(fetcher_module.HostDeferred):
            await fetcher.fetch(f"{site}/news")
    assert asked == ["/robots.txt"]


async def test_a_robots_txt_past_500_kib_is_read_up_to_its_last_line_within_them() -> None:
    # RFC 9309 §2.5: at least 500 KiB must be parsed. Refused whole, the file shut its
    # host as if unreachable, read again every ten minutes, the host never polled.
    head = "User-agent: *\nDisallow: /private\n"
    filler = "# " + "x" * 97 + "\n"
    body = head + filler * ((500 * 1024 - len(head)) // len(filler))
    body += "#" * (500 * 1024 - 10 - len(body) - 1) + "\n"  # 10 bytes left of the limit
    body += "Disallow: /cut-in-two\nDisallow: /after\n" + filler * 1000
    asked: list[str] = []
    async with peer(_robots(_ok(body), asked)) as site, PoliteFetcher(LOOPBACK) as fetcher:
        await fetcher.fetch(f"{site}/news")
        with pytest.raises(fetcher_module.Refused, match=r"disallowed by robots\.txt"):
            await fetcher.fetch(f"{site}/private/1")
        # The line the limit cuts, and those after it, are not read.
        await fetcher.fetch(f"{site}/cut-in-two")
        await fetcher.fetch(f"{site}/after")
    assert asked == ["/robots.txt", "/news", "/cut-in-two", "/after"]


async def test_a_robots_txt_past_500_kib_of_cr_line_ends_is_read_up_to_its_last_line() -> None:
    # RFC 9309 §2.2: a line ends at a CR, an LF or both. Cut at the last LF, a file of
    # CRs only was cut to nothing, and read as empty it allowed everything.
    body = "User-agent: *\rDisallow: /private\r" + ("# " + "x" * 97 + "\r") * 6000
    asked: list[str] = []
    async with peer(_robots(_ok(body), asked)) as site, PoliteFetcher(LOOPBACK) as fetcher:
        await fetcher.fetch(f"{site}/news")
        with pytest.raises(fetcher_module.Refused, match=r"disallowed by robots\.txt"):
            await fetcher.fetch(f"{site}/private/1")
    assert asked == ["/robots.txt", "/news"]


async def test_a_robots_txt_of_no_line_end_within_500_kib_shuts_its_host_for_a_while(
    monkeypatch: Any,
) -> None:
    # No rule of it can be read: as an empty file it allowed everything for a day.
    monkeypatch.setattr(fetcher_module, "_ROBOTS_UNREACHABLE_TTL", 0.0)
    body = "User-agent: *  " + " " * 600 * 1024 + "\nDisallow: /\n"
    asked: list[str] = []
    async with peer(_robots(_ok(body), asked)) as site, PoliteFetcher(LOOPBACK) as fetcher:
        for _ in range(2):  # asked again once the unreachable one's time is up
            with pytest.raises(fetcher_module.Refused, match="no line end within its first 500"):
                await fetcher.fetch(f"{site}/news")
    assert asked == ["/robots.txt", "/robots.txt"]
