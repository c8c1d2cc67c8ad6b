"""Cursors, rate limits, the cache, article bodies, the live ticker and the page's links."""

from __future__ import annotations

import asyncio
import base64
import html
import ipaddress
import json
import re
from dataclasses import replace
from datetime import UTC, date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.query.api import MAX_CURSOR_LENGTH, SearchParams
from services.query.articles import build_similar, build_suggest, shape_article, shape_suggest
from services.query.cursors import Cursor, InvalidCursor, decode_cursor
from services.query.languages import Language
from services.query.limits import (
    MOST_TRUSTED_HOPS,
    Places,
    RateLimiter,
    TrustedProxies,
    TtlCache,
    client_address,
)
from services.query.live import (
    MAX_QUOTE_BYTES,
    Subscription,
    Unreadable,
    sse_message,
    ticker_update,
)
from services.query.middleware import RateLimitMiddleware
from services.query.pages import facet_links, language_links, local_day, pager, search_url
from services.query.search import (
    FRAGMENT_CHARS,
    Facet,
    Facets,
    SearchPage,
    clip_fragment,
    hit_fields,
)
from shared.events import QuoteEvent


def test_cursor_round_trip() -> None:
    # An article without a date sorts by Long.MIN_VALUE, as Elasticsearch gives it.
    cursor = Cursor(10_000, "relevance", (3.25, -(2**63), "https://example.org/a?b=c"))
    assert decode_cursor(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        Cursor(0, "newest", (1, 2, "u")).encode(),
        Cursor(5, "newest", (1, 2)).encode(),
        "eyJvIjo1LCJzIjoiYm9ndXMiLCJhIjpbMSwyLDNdfQ",  # sort "bogus"
        "eyJvIjp0cnVlLCJzIjoibmV3ZXN0IiwiYSI6WzEsMiwzXX0",  # offset true
        "eyJvIjo1LCJzIjoibmV3ZXN0IiwiYSI6W1tdLDIsM119",  # a list inside the values
        # Values no Elasticsearch sort gives, refused as forged (400): not left to fail
        # while the search body is written, or inside Elasticsearch (the API's 503).
        Cursor(5, "newest", (1, 2**63, "u")).encode(),  # past a long
        Cursor(5, "relevance", (float("nan"), 1, "u")).encode(),
        Cursor(5, "relevance", (float("-inf"), 1, "u")).encode(),
        Cursor(5, "relevance", (10**400, 1, "u")).encode(),  # past a double: was a 500
        Cursor(5, "newest", (None, 2, "u")).encode(),  # a date is never null
        Cursor(5, "newest", (1.5, 2, "u")).encode(),  # nor a fraction
        Cursor(5, "newest", ("1", 2, "u")).encode(),  # nor a string
        Cursor(5, "newest", (1, 2, 3)).encode(),  # the tiebreak is a keyword
        Cursor(5, "relevance", (True, 2, "u")).encode(),
        Cursor(5, "newest", (1, 2, "\ud800")).encode(),  # a lone surrogate
        Cursor(2**53, "newest", (1, 2, "u")).encode(),  # an offset past exact JSON integers
    ],
)
def test_anything_but_an_issued_cursor_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(text)


def test_a_cursor_holds_any_long_and_any_finite_score() -> None:
    for cursor in (
        Cursor(2**53 - 1, "newest", (-(2**63), 2**63 - 1, "https://пример.рф/ä")),
        Cursor(1, "relevance", (-0.0, 0, "u")),
        Cursor(1, "relevance", (7, 1743206400000, "u")),
    ):
        assert decode_cursor(cursor.encode()) == cursor


def test_rate_limiter_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.acquire(("a",), 0.0) for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire(("a",), 0.0) == pytest.approx(0.5)
    assert limiter.acquire(("b",), 0.0) == 0  # another client has its own bucket
    assert limiter.acquire(("a",), 0.5) == 0
    assert limiter.acquire(("a",), 0.5) > 0


def test_a_refund_gives_back_one_token_up_to_the_burst() -> None:
    limiter = RateLimiter(rate=0.001, burst=2)
    assert [limiter.acquire(("a",), 0.0) for _ in range(2)] == [0, 0]
    limiter.refund(("a",))
    assert limiter.acquire(("a",), 0.0) == 0
    assert limiter.acquire(("a",), 0.0) > 0
    limiter.refund(("unknown",))  # a client never counted has nothing to give back
    assert limiter.acquire(("unknown",), 0.0) == 0
    for _ in range(5):
        limiter.refund(("unknown",))
    assert [limiter.acquire(("unknown",), 0.0) for _ in range(3)] == [0, 0, pytest.approx(1000)]


def test_rate_limiter_forgets_the_least_recent_clients() -> None:
    limiter = RateLimiter(rate=1, burst=1, max_keys=2)
    limiter.acquire(("a",), 0.0)
    limiter.acquire(("b",), 0.0)
    limiter.acquire(("c",), 0.0)
    assert limiter.acquire(("a",), 0.0) == 0  # "a" was dropped, so it starts with a full bucket


NO_PROXY = TrustedProxies()
INGRESS = TrustedProxies(hops=1)
PRIVATE = TrustedProxies.parse(0, "10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "client"),
    [
        # Without configuration X-Forwarded-For is anybody's say: the socket peer counts.
        ("203.0.113.7", ["198.51.100.1"], NO_PROXY, "203.0.113.7"),
        (None, [], NO_PROXY, "unknown"),
        # One hop (the Ingress controller): the rightmost entry, the one it appended.
        ("10.0.0.5", ["6.6.6.6, 203.0.113.7"], INGRESS, "203.0.113.7"),
        ("10.0.0.5", ["6.6.6.6", "7.7.7.7, 203.0.113.7"], INGRESS, "203.0.113.7"),
        ("10.0.0.5", [" 203.0.113.7 "], INGRESS, "203.0.113.7"),
        ("10.0.0.5", [], INGRESS, "10.0.0.5"),  # not through the proxy at all
        # Two hops (a CDN, then the Ingress controller).
        ("10.0.0.5", ["6.6.6.6, 203.0.113.7, 192.0.2.1"], TrustedProxies(hops=2), "203.0.113.7"),
        ("10.0.0.5", ["203.0.113.7"], TrustedProxies(hops=2), "203.0.113.7"),
        # Networks: leftwards past every trusted address, whatever the client wrote before.
        ("10.0.0.5", ["6.6.6.6, 203.0.113.7, 10.1.2.3"], PRIVATE, "203.0.113.7"),
        ("203.0.113.7", ["6.6.6.6"], PRIVATE, "203.0.113.7"),  # the peer is no proxy of ours
        ("10.0.0.5", ["10.9.9.9"], PRIVATE, "10.9.9.9"),  # all ours: the furthest
        ("10.0.0.5", ["6.6.6.6, not-an-address"], PRIVATE, "not-an-address"),
        ("fd00::5", ["[2001:db8::1]:443"], PRIVATE, "2001:db8::/64 2001:db8::/56 2001:db8::/48"),
        ("10.0.0.5", ["203.0.113.7:5555"], INGRESS, "203.0.113.7"),
        ("10.0.0.5", ["::ffff:203.0.113.7"], INGRESS, "203.0.113.7"),
        # IPv6 per /64, the network one home or host is given, all its addresses one
        # client; and in the /56 and /48 a provider may give one customer.
        (
            "2001:db8:1:2:aaaa:bbbb:cccc:dddd",
            [],
            NO_PROXY,
            "2001:db8:1:2::/64 2001:db8:1::/56 2001:db8:1::/48",
        ),
        (
            "10.0.0.5",
            ["2001:db8:1:2::1"],
            INGRESS,
            "2001:db8:1:2::/64 2001:db8:1::/56 2001:db8:1::/48",
        ),
        (
            "2001:db8:1:3ff::1",
            [],
            NO_PROXY,
            "2001:db8:1:3ff::/64 2001:db8:1:300::/56 2001:db8:1::/48",
        ),
        ("::ffff:203.0.113.7", [], NO_PROXY, "203.0.113.7"),
    ],
)
def test_the_client_is_read_from_the_right_past_trusted_proxies(
    peer: str | None, forwarded: list[str], proxies: TrustedProxies, client: str
) -> None:
    assert client_address(peer, forwarded, proxies) == tuple(map(_key, client.split()))


def _key(written: str) -> str:
    """The key of a client as the table above writes it: an IPv6 network by its prefix."""
    if "/" not in written:
        return written
    network = ipaddress.IPv6Network(written)
    return f"{int(network.network_address) >> (128 - network.prefixlen):x}/{network.prefixlen}"


def test_a_long_chain_of_trusted_proxies_is_read_by_its_nearest_hops() -> None:
    # Each entry parsed: a 60 KB header of trusted addresses cost 30 ms a request.
    forwarded = ["203.0.113.7", ", ".join(["10.0.0.9"] * 5_000)]
    assert client_address("10.0.0.5", forwarded, PRIVATE) == ("10.0.0.9",)
    nearer = ["203.0.113.7", ", ".join(["10.0.0.9"] * (MOST_TRUSTED_HOPS - 1))]
    assert client_address("10.0.0.5", nearer, PRIVATE) == ("203.0.113.7",)


@given(st.lists(st.text(max_size=20), max_size=5), st.sampled_from([INGRESS, PRIVATE]))
def test_no_leftmost_entry_a_client_sends_changes_its_key(
    spoofed: list[str], proxies: TrustedProxies
) -> None:
    # What the Ingress controller (10.0.0.5) forwards: the client's header, then its peer.
    forwarded = [*spoofed, "203.0.113.7"]
    assert client_address("10.0.0.5", forwarded, proxies) == ("203.0.113.7",)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_an_ipv6_client_is_one_key_across_its_64_and_another_64_is_another(
    network: int, host: int, other_host: int
) -> None:
    def key(address: int) -> str:
        return client_address(str(ipaddress.IPv6Address(address)), [], NO_PROXY)[0]

    # 2000::/3 (global unicast): no IPv4-mapped or other special form among them.
    prefix = (0x2000 << 112) | ((network % 2**61) << 64)
    assert key(prefix | host) == key(prefix | other_host)
    assert key(prefix | host) != key((prefix ^ (1 << 64)) | host)


def test_trusted_proxies_are_a_count_or_networks_not_both() -> None:
    assert TrustedProxies.parse(1, "") == INGRESS
    assert TrustedProxies.parse(0, "") == NO_PROXY
    with pytest.raises(ValueError, match="not both"):
        TrustedProxies.parse(1, "10.0.0.0/8")
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        TrustedProxies.parse(0, "10.0.0.0/33")


async def test_the_rate_limit_counts_a_spoofing_client_once() -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = RateLimitMiddleware(ok, RateLimiter(rate=0.001, burst=2), INGRESS)
    transport = httpx.ASGITransport(app=limited, client=("10.0.0.5", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        statuses = [
            (
                await client.get(
                    "/api/search", headers={"X-Forwarded-For": f"6.6.6.{n}, 203.0.113.7"}
                )
            ).status_code
            for n in range(3)
        ]
        other = await client.get("/api/search", headers={"X-Forwarded-For": "198.51.100.1"})
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def _status_from(app: ASGIApp, client: str) -> int:
    """The status `app` answers a search from the socket peer `client`."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/search",
        "headers": [],
        "client": (client, 40000),
    }
    await app(scope, receive, send)
    return statuses[0]


@pytest.mark.parametrize(
    ("addresses", "allowed"),
    [
        # One /64, a fresh address for every request: still one client's burst.
        ([f"2001:db8:1:2::{n:x}" for n in range(1, 1001)], 60),
        # IPv4 is per address: a thousand of them are a thousand clients.
        ([f"10.1.{n // 250}.{n % 250 + 1}" for n in range(1000)], 1000),
        # A fresh /64 for every request: its /56 has four clients' burst, its /48 sixteen.
        ([f"2001:db8:1:{n:x}::1" for n in range(256)], 4 * 60),
        ([f"2001:db8:1:{(n % 256) << 8 | n // 256:x}::1" for n in range(2000)], 16 * 60),
        # Each a /48 of its own: a thousand customers.
        ([f"2001:db8:{n:x}::1" for n in range(1000)], 1000),
        # One /64 spent first refuses the rest, and its refusals take nothing from its /56.
        ([*["2001:db8:1:1::1"] * 100, *[f"2001:db8:1:{n:x}::1" for n in range(2, 256)]], 4 * 60),
    ],
)
async def test_the_rate_limit_counts_an_ipv6_client_per_64_and_its_wider_networks(
    addresses: list[str], allowed: int
) -> None:
    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = RateLimitMiddleware(ok, RateLimiter(rate=0.001, burst=60), NO_PROXY)
    statuses = [await _status_from(limited, address) for address in addresses]
    assert statuses.count(200) == allowed
    assert set(statuses) <= {200, 429}


def test_ttl_cache_expires_and_is_bounded() -> None:
    cache: TtlCache[str] = TtlCache(seconds=5, max_keys=2)
    cache.put("a", "A", now=0)
    assert cache.get("a", now=4.9) == "A"
    assert cache.get("a", now=5.0) is None
    cache.put("a", "A", now=10)
    cache.put("b", "B", now=10)
    cache.put("c", "C", now=10)
    assert (cache.get("a", 11), cache.get("b", 11), cache.get("c", 11)) == (None, "B", "C")
    off: TtlCache[str] = TtlCache(seconds=0)
    off.put("a", "A", now=0)
    assert off.get("a", now=0) is None


def test_ttl_cache_is_bounded_by_weight_too() -> None:
    # Counted by keys alone, a thousand pages of 50 long hits grew the process by 125 MB.
    cache: TtlCache[str] = TtlCache(seconds=5, max_keys=100, max_weight=10)
    for key in "abc":
        cache.put(key, key.upper(), now=0, weight=4)
    assert [cache.get(key, 1) for key in "abc"] == [None, "B", "C"]
    cache.put("b", "B2", now=1, weight=1)  # kept again, weighing what it weighs now
    cache.put("d", "D", now=1, weight=5)
    assert [cache.get(key, 2) for key in "bcd"] == ["B2", "C", "D"]
    cache.put("huge", "H", now=2, weight=11)  # heavier than all: never kept
    assert cache.get("huge", 2) is None
    assert [cache.get(key, 2) for key in "bcd"] == ["B2", "C", "D"]


def test_similar_and_suggest_bodies() -> None:
    similar = build_similar("articles", "ab" * 16, 5)
    mlt = similar["query"]["more_like_this"]
    assert mlt["like"] == [{"_index": "articles", "_id": "ab" * 16}]
    assert mlt["fields"] == ["title", "stem.title", "summary", "stem.summary", "body", "stem.body"]
    assert similar["size"] == 5
    suggest = build_suggest("Kaz", 5)["suggest"]["titles"]
    assert suggest == {
        "prefix": "Kaz",
        "completion": {"field": "title_suggest", "size": 5, "skip_duplicates": True},
    }


@pytest.mark.parametrize("typed", ["И\u0306ошкар", "Йош\u00adкар", "Йош\u200bкар", "Йошкар\u00a0"])
def test_a_prefix_is_cleaned_as_titles_are(typed: str) -> None:
    # Decomposed, or with an invisible character inside: the completion field's analyser
    # split it where the titles, kept NFC, have no break (review of the search's fix).
    assert build_suggest(typed, 5) == build_suggest("Йошкар", 5)


def test_article_and_suggestions_are_shaped() -> None:
    article = shape_article(
        {
            "_id": "x",
            "_source": {
                "title": "T",
                "url": "https://s.example/x",
                "source": "s",
                "body": "B",
                "version": 7,
                "countries": ["KZ"],
            },
        }
    )
    assert (article.id, article.title, article.body, article.countries) == ("x", "T", "B", ["KZ"])
    response = {
        "suggest": {
            "titles": [
                {
                    "text": "Kaz",
                    "options": [
                        {
                            "_id": "a",
                            "text": "Kazakhstan as an Emerging Mi",
                            "_source": {
                                "title": "Kazakhstan as an Emerging Middle Power",
                                "url": "https://s.example/a",
                            },
                        }
                    ],
                }
            ]
        }
    }
    suggestions = shape_suggest("Kaz", response)
    assert [(s.id, s.title) for s in suggestions.suggestions] == [
        ("a", "Kazakhstan as an Emerging Middle Power")
    ]
    assert shape_suggest("Kaz", {}).suggestions == []


def _quote(**changes: Any) -> QuoteEvent:
    """A quote of 29 March 2025, with `changes`."""
    fields: dict[str, Any] = {
        "base": "KGS",
        "rate": Decimal("0.01156"),
        "as_of": date(2025, 3, 29),
        "provider": "cbr",
        "fetched_at": "2025-03-29T10:00:00Z",
    }
    return QuoteEvent.model_validate(fields | changes)


def test_a_quote_event_becomes_a_ticker_update_as_the_seed_shows_it() -> None:
    event = _quote(
        base="TJS",
        rate=Decimal("0.0917431"),
        change_pct=Decimal("0.334"),
        previous_rate=Decimal("0.0914"),
    )
    update = ticker_update(event.model_dump_json().encode())
    assert update == {
        "base": "TJS",
        "quote": "USD",
        "as_of": "2025-03-29",
        "ticker": "TJS/USD = 0.09174 0.33%",
    }
    message = sse_message("quote", update)
    assert message.startswith("event: quote\ndata: ")
    assert message.endswith("\n\n")
    assert json.loads(message.split("data: ", 1)[1]) == update


def test_entries_that_are_not_quotes_say_why() -> None:
    # Another version's quote in a mixed rollout was dropped without a word before.
    newer = _quote().model_dump(mode="json") | {"schema_version": 2}
    for data, error in [
        (b'{"title": "no quote"}', r"^\w+: Field required"),
        (b"not json", r"^: Invalid JSON"),
        (json.dumps(newer).encode(), r"^schema_version: Input should be 1"),
    ]:
        with pytest.raises(Unreadable, match=error) as caught:
            ticker_update(data)
        assert caught.value.reason == "invalid"


def test_an_entry_longer_than_any_quote_is_not_parsed() -> None:
    quote = _quote().model_dump_json().encode()
    # A valid quote with an unknown field, which a reader ignores, past the bound.
    padded = quote[:-1] + b',"padding":"' + b"x" * MAX_QUOTE_BYTES + b'"}'
    assert ticker_update(quote) is not None
    with pytest.raises(Unreadable, match="past 16384") as caught:
        ticker_update(padded)
    assert caught.value.reason == "oversized"


def test_only_the_primary_providers_quotes_move_the_ticker() -> None:
    cross_rate = _quote(base="KZT", rate=Decimal("0.0021"), primary=False)
    assert ticker_update(cross_rate.model_dump_json().encode()) is None


def test_live_places_are_capped_per_client_and_per_process() -> None:
    places = Places(most=3, most_per_client=2)
    a, b, c = ("a",), ("b",), ("c",)
    assert [places.take(a), places.take(a), places.take(a)] == [None, None, "client"]
    assert places.take(b) is None
    assert places.take(c) == "process"
    assert places.take(a) == "client"  # its own cap first: the one it can do something about
    places.give_back(a)
    assert places.take(c) is None
    assert places.taken == 3
    places.give_back(c)
    places.give_back(b)
    places.give_back(a)
    assert places.taken == 0
    assert [places.take(a), places.take(a)] == [None, None]  # nothing left over


def test_an_ipv6_clients_wider_networks_have_places_of_their_own() -> None:
    places = Places(most=1000, most_per_client=2)

    def opened(addresses: list[str]) -> int:
        clients = [client_address(address, [], NO_PROXY) for address in addresses]
        return sum(places.take(client) is None for client in clients)

    assert opened([f"2001:db8:1:1::{n:x}" for n in range(1, 10)]) == 2  # one /64
    assert opened([f"2001:db8:1:{n:x}::1" for n in range(2, 40)]) == 4 * 2 - 2  # its /56
    assert opened([f"2001:db8:1:{n:x}00::1" for n in range(1, 40)]) == 16 * 2 - 4 * 2  # /48
    assert opened([f"2001:db8:{n:x}::1" for n in range(2, 12)]) == 10  # other customers
    assert places.taken == 16 * 2 + 10
    places.give_back(client_address("2001:db8:1:1::1", [], NO_PROXY))
    # The /48's place given back, once: a /64 and a /56 never used take one of them.
    assert opened(["2001:db8:1:1::1", "2001:db8:1:ff00::1"]) == 1


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60))
def test_no_sequence_of_opens_and_closes_exceeds_a_cap(steps: list[tuple[str, bool]]) -> None:
    places = Places(most=4, most_per_client=2)
    held: list[str] = []
    for client, opens in steps:
        if opens and places.take((client,)) is None:
            held.append(client)
        elif not opens and client in held:
            held.remove(client)
            places.give_back((client,))
        assert places.taken == len(held) <= 4
        assert all(held.count(c) <= 2 for c in "abc")


def test_refused_requests_make_no_buckets_to_push_out_anothers() -> None:
    limiter = RateLimiter(rate=0.001, burst=1, max_keys=100)
    assert limiter.acquire(("203.0.113.7",), now=0) == 0
    # A /48 sends from a thousand fresh /64s: sixteen go on, and the refused rest, which
    # cost it nothing, must not flush the table (and the IPv4 client's bucket with it).
    flood = [client_address(f"2001:db8:1:{n:x}::1", [], NO_PROXY) for n in range(1000)]
    assert sum(limiter.acquire(client, now=0) == 0 for client in flood) == 16
    assert limiter.acquire(("203.0.113.7",), now=0) > 0


def test_a_refund_gives_the_token_back_to_every_network_of_the_client() -> None:
    limiter = RateLimiter(rate=0.001, burst=1)
    client = client_address("2001:db8:1:1::1", [], NO_PROXY)
    assert limiter.acquire(client, now=0) == 0
    assert limiter.acquire(client, now=0) > 0
    limiter.refund(client)
    assert limiter.acquire(client, now=0) == 0
    # Three more /64s of the /56 (burst 4) take what it has left, the refund included.
    others = [client_address(f"2001:db8:1:{n}::1", [], NO_PROXY) for n in range(2, 6)]
    assert [limiter.acquire(other, now=0) == 0 for other in others] == [True, True, True, False]


async def test_a_subscription_gives_its_place_back_once() -> None:
    released = []
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    with Subscription(queue, lambda: released.append(True)) as subscription:
        queue.put_nowait({"base": "KGS"})
        assert await subscription.next_message() == sse_message("quote", {"base": "KGS"})
        subscription.close()
    assert released == [True]


def _params(**changes: Any) -> SearchParams:
    base = SearchParams(
        q="gas",
        page=1,
        size=10,
        source=(),
        country=(),
        tag=(),
        language=(),
        date_from=None,
        date_to=None,
        sort="relevance",
        cursor=None,
    )
    return replace(base, **changes)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_search_url_carries_only_what_differs_from_the_defaults() -> None:
    assert search_url(_params(q="")) == "/"
    assert _query(search_url(_params(), page=3)) == {"q": ["gas"], "page": ["3"]}
    url = search_url(_params(source=("a b", "c&d")), date_from=date(2025, 3, 1))
    assert _query(url) == {"q": ["gas"], "source": ["a b", "c&d"], "date_from": ["2025-03-01"]}
    assert _query(search_url(_params(), "kk", page=2)) == {
        "q": ["gas"],
        "page": ["2"],
        "lang": ["kk"],
    }


def _page(total: int, page: int, size: int = 10, cursor: str | None = "next") -> SearchPage:
    start = (page - 1) * size
    return SearchPage(
        total=total,
        page=page,
        size=size,
        from_=start + 1,
        to=min(start + size, total),
        results=[],
        next_cursor=cursor,
        facets=Facets(
            source=[Facet(value="meduza.io", count=4)], month=[Facet(value="2025-03", count=2)]
        ),
    )


def test_pager_numbers_around_the_current_page() -> None:
    links = pager(_params(), _page(95, 5), Language())
    assert [link.label for link in links] == ["Previous", "3", "4", "5", "6", "7", "Next"]
    assert [link.label for link in links if link.current] == ["5"]
    assert _query(links[0].url)["page"] == ["4"]
    assert all("lang" not in _query(link.url) for link in links)


def test_pager_in_a_chosen_language_keeps_it() -> None:
    links = pager(_params(), _page(95, 5), Language("ru", chosen=True))
    assert [link.label for link in links] == ["Назад", "3", "4", "5", "6", "7", "Далее"]
    assert all(_query(link.url)["lang"] == ["ru"] for link in links)


def test_pager_goes_past_the_window_with_the_cursor() -> None:
    links = pager(_params(), _page(50_000, 1000), Language())
    assert links[-1].label == "Next"
    assert _query(links[-1].url)["cursor"] == ["next"]
    assert "page" not in _query(links[-1].url)


def test_facet_links_add_and_remove_their_filter() -> None:
    facets = facet_links(_params(page=4), _page(30, 4), Language())
    ((source_link, count),) = facets["Source"]
    assert (source_link.label, source_link.current, count) == ("meduza.io", False, 4)
    assert _query(source_link.url) == {"q": ["gas"], "source": ["meduza.io"]}
    chosen = facet_links(_params(source=("meduza.io",)), _page(30, 1), Language())
    assert chosen["Source"][0][0].current
    assert "source" not in _query(chosen["Source"][0][0].url)
    ((month_link, _),) = facets["Month"]
    assert month_link.label == "March 2025"
    assert _query(month_link.url)["date_to"] == ["2025-03-31"]


def test_facet_links_in_a_chosen_language_are_named_and_kept_in_it() -> None:
    facets = facet_links(_params(), _page(30, 1), Language("kk", chosen=True))
    assert list(facets) == ["Дереккөз", "Ай"]
    ((month_link, _),) = facets["Ай"]
    assert month_link.label == "2025\u202fж. наурыз"  # CLDR: a narrow no-break space
    assert _query(month_link.url)["lang"] == ["kk"]


def test_the_language_switch_carries_only_what_the_pages_read() -> None:
    # 20,000 unknown parameters were copied into each of the five links.
    query = [("x", ""), *[("source", f"s{n}") for n in range(30)], ("tag", "t" * 201)]
    asked = [*query, ("q", "нефть"), *query, ("q", "газ")]  # the page reads the last q
    links = language_links("/", asked, Language("ru", chosen=True))
    kept = _query(links[0][1].url)
    assert kept == {"source": [f"s{n}" for n in range(20)], "q": ["газ"], "lang": ["en"]}


def test_the_language_switch_links_this_page_in_each_language() -> None:
    links = language_links(
        "/", [("q", "газ"), ("page", "2"), ("lang", "ru")], Language("ru", chosen=True)
    )
    assert [tag for tag, _ in links] == ["en", "ru", "uz-Latn", "uz-Cyrl", "kk"]
    assert [link.label for _, link in links] == [
        "English",
        "Русский",
        "Oʻzbekcha",
        "Ўзбекча",
        "Қазақша",
    ]
    assert [tag for tag, link in links if link.current] == ["ru"]
    assert _query(links[3][1].url) == {"q": ["газ"], "page": ["2"], "lang": ["uz-Cyrl"]}


def _visible(fragment: str) -> str:
    return html.unescape(fragment.replace("<mark>", "").replace("</mark>", ""))


def test_a_fragment_of_one_endless_word_is_cut_its_mark_closed() -> None:
    # A page's one "word" of 450,000 characters made every hit's excerpt 900 KB.
    word = "<mark>dollar</mark>" + "&amp;x" * 200_000
    cut = clip_fragment(word)
    assert cut.startswith("<mark>dollar</mark>&amp;x")
    assert cut.endswith("…")
    assert len(_visible(cut)) == FRAGMENT_CHARS + 1
    inside = clip_fragment("a <mark>" + "y" * 5000 + "</mark> b")
    assert inside.endswith("y</mark>…")
    assert len(_visible(inside)) == FRAGMENT_CHARS + 1
    normal = "a <mark>rate</mark> of &lt;1%, " * 10
    assert clip_fragment(normal) == normal


@given(
    st.lists(
        st.sampled_from(
            [
                "word ",
                "&amp;",
                "&#39;",
                "<mark>hit</mark>",
                "x" * 97,
                "<mark>" + "z" * 300 + "</mark>",
                # More markup than text: 20 characters for one.
                "<mark>a</mark>&#x27;" * 40,
            ]
        ),
        max_size=40,
    ),
    st.integers(1, 700),
)
def test_a_cut_fragment_shows_the_start_of_the_text_with_whole_markup(
    pieces: list[str], most: int
) -> None:
    fragment = "".join(pieces)
    cut = clip_fragment(fragment, most)
    if cut == fragment:
        assert len(fragment) <= most or len(_visible(fragment)) <= most
        return
    shown = _visible(cut.removesuffix("…"))
    assert _visible(fragment).startswith(shown)
    assert len(shown) == most
    assert cut.count("<mark>") == cut.count("</mark>")
    assert re.fullmatch(r"([^&<]|&amp;|&#39;|&#x27;|</?mark>)*…", cut)


@pytest.mark.parametrize("letter", ["я", "😀", "a"])
def test_a_cursor_after_the_longest_url_the_index_keeps_is_read_back(letter: str) -> None:
    # At 2,000 characters, an article with a URL of 250 Cyrillic letters ended paging
    # there (a 422 for its next page), and its Atom feed's next link.
    url = "https://site.example/" + letter * (32_000 // len(letter.encode()))
    cursor = Cursor(10_000, "relevance", (1.5, 1_700_000_000_000, url))
    encoded = cursor.encode()
    assert len(encoded) <= MAX_CURSOR_LENGTH
    assert decode_cursor(encoded) == cursor
    short = Cursor(10, "newest", (1_700_000_000_000, 1_700_000_000_000, "https://s.example/я"))
    assert decode_cursor(short.encode()) == short
    assert "\\u044f" in base64.urlsafe_b64decode(short.encode() + "==").decode()  # as before


def test_a_hit_shows_no_label_longer_than_any_and_no_title_that_is_not_text() -> None:
    # Fifty tags of 30,000 characters went out whole: 1.5 MB a hit. A title that is
    # a number failed every suggestion reaching its document.
    source = {
        "title": "t",
        "url": "https://s.example/a",
        "source": "s",
        "tags": ["x" * 30_000] * 50,
    }
    hit = hit_fields({"_id": "a" * 32, "_source": source})  # type: ignore[typeddict-item]
    assert hit["tags"] == []
    link = "https://s.example/a"
    options = [
        {"_id": "b" * 32, "text": "Ta", "_source": {"title": 12345, "url": link}},
        {"_id": "c" * 32, "text": "Ta", "_source": {"title": "Tashkent", "url": link}},
    ]
    found = shape_suggest("Ta", {"suggest": {"titles": [{"options": options}]}})
    assert [s.title for s in found.suggestions] == ["Tashkent"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://s.example/a", 7, None])
def test_no_suggestion_of_an_article_searches_leave_out(url: object) -> None:
    # Its document is left out of every search and its article is a 404: a suggestion
    # of it led to nothing.
    spoiled = {"title": "Tashkent nights", **({} if url is None else {"url": url})}
    options = [
        {"_id": "b" * 32, "text": "Ta", "_source": spoiled},
        {
            "_id": "c" * 32,
            "text": "Ta",
            "_source": {"title": "Tashkent", "url": "http://s.example/"},
        },
    ]
    found = shape_suggest("Ta", {"suggest": {"titles": [{"options": options}]}})
    assert [s.id for s in found.suggestions] == ["c" * 32]


def test_a_stored_moment_shows_on_its_day_in_the_readers_zone() -> None:
    tashkent = ZoneInfo("Asia/Tashkent")
    assert local_day("2026-11-30T20:00:00Z", tashkent) == date(2026, 12, 1)
    assert local_day("2026-11-30T20:00:00Z", UTC) == date(2026, 11, 30)
    # A day without a time, or what another writer stored, is shown as it is.
    assert local_day("2026-11-30", tashkent) == "2026-11-30"
    assert local_day("2025", tashkent) == "2025"
    assert local_day("not a date", tashkent) == "not a date"
    assert local_day(None, tashkent) is None
    # Past what a datetime holds once in the zone: its own day, not a failed page.
    assert local_day("9999-12-31T22:00:00Z", tashkent) == date(9999, 12, 31)
