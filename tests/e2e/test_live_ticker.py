"""The live ticker of a real query service process: no connection keeps its place past
its close (pipelined requests included), one client gets a few streams and not all of
them, and every stream ends at its lifetime.

Places are read from the service's own /metrics (`caravan_query_live_streams`).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from services.query.live import KEEPALIVE_SECONDS, RECONNECT_MS
from shared.settings import Settings
from tests.e2e.conftest import query_process
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

STREAM = "/api/quotes/stream"
REQUEST = b"GET /api/quotes/stream HTTP/1.1\r\nHost: query\r\n\r\n"
SOONER_THAN_A_KEEPALIVE = KEEPALIVE_SECONDS * 2 / 3


def open_streams(url: str) -> int:
    metrics = httpx.get(f"{url}/metrics").text
    match = re.search(r"^caravan_query_live_streams (\S+)$", metrics, re.MULTILINE)
    assert match, "no caravan_query_live_streams in /metrics"
    return int(float(match.group(1)))


def pipelined_and_closed(url: str, requests: int) -> None:
    """Streams asked for `requests` times at once on one connection; closed once the
    first is running (the rest wait behind it, as HTTP/1.1 pipelining has them)."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(REQUEST * requests)
        received = b""
        while b": connected" not in received:
            chunk = sock.recv(4096)
            assert chunk, f"the connection closed before the stream started: {received!r}"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")


def test_a_closed_connection_frees_its_place_pipelined_requests_or_not(
    settings: Settings,
) -> None:
    # A lifetime long past the test's waits, and waits shorter than the first keepalive
    # (a write into the closed connection may fail and end the stream too): what frees
    # the place is the close, seen as it happens.
    with query_process(
        CARAVAN_QUERY_RATE_LIMIT="0",
        CARAVAN_QUERY_LIVE_MAX_SECONDS="3600",
        CARAVAN_QUERY_LIVE_MAX_CONNECTIONS="3",
        CARAVAN_QUERY_LIVE_MAX_PER_CLIENT="3",
    ) as url:
        for requests in (1, 2, 5):
            pipelined_and_closed(url, requests)
            wait_for(
                lambda: open_streams(url) == 0,
                SOONER_THAN_A_KEEPALIVE,
                f"the place of a stream closed with {requests} requests on its connection",
            )

        # What turned the ticker off for everyone: as many such connections as places.
        for _ in range(3):
            pipelined_and_closed(url, 2)
        wait_for(lambda: open_streams(url) == 0, SOONER_THAN_A_KEEPALIVE, "every place given back")
        with httpx.stream("GET", f"{url}{STREAM}", timeout=10) as page:
            assert page.status_code == 200


def test_one_client_gets_a_few_streams_counted_per_ipv6_64(settings: Settings) -> None:
    # Behind one trusted proxy (as under the Ingress): the client is X-Forwarded-For's.
    with (
        query_process(
            CARAVAN_QUERY_RATE_LIMIT="0",
            CARAVAN_QUERY_TRUSTED_PROXIES="1",
            CARAVAN_QUERY_LIVE_MAX_PER_CLIENT="2",
        ) as url,
        httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=30)) as client,
        contextlib.ExitStack() as pages,
    ):

        def open_from(address: str) -> httpx.Response:
            return pages.enter_context(
                client.stream("GET", STREAM, headers={"X-Forwarded-For": address})
            )

        first = open_from("2001:db8:0:1::a")
        second = open_from("2001:db8:0:1::b")
        assert (first.status_code, second.status_code) == (200, 200)

        refused = client.get(STREAM, headers={"X-Forwarded-For": "2001:db8:0:1::c"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].isdigit()
        assert "too many live ticker connections from your address" in refused.json()["detail"]

        assert open_from("2001:db8:0:2::a").status_code == 200  # another /64, another client
        assert open_streams(url) == 3

        first.close()
        wait_for(lambda: open_streams(url) == 2, 30, "the closed stream's place given back")
        assert open_from("2001:db8:0:1::c").status_code == 200


def test_a_stream_ends_at_its_lifetime_and_says_when_to_reconnect(settings: Settings) -> None:
    with query_process(CARAVAN_QUERY_RATE_LIMIT="0", CARAVAN_QUERY_LIVE_MAX_SECONDS="1") as url:
        started = time.monotonic()
        with httpx.stream("GET", f"{url}{STREAM}", timeout=httpx.Timeout(10, read=30)) as page:
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/event-stream")
            lines = list(page.iter_lines())  # returns once the service ends the stream
        lasted = time.monotonic() - started

        assert lines[:2] == [f"retry: {RECONNECT_MS}", ": connected"]
        assert 1 <= lasted < 30
        wait_for(lambda: open_streams(url) == 0, 30, "the ended stream's place given back")
