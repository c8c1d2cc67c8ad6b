"""Rate limit, cache headers and the header every answer carries, as plain ASGI middleware.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: that one runs every
request through extra tasks and memory streams, a cost on each search and a
buffer in front of the live ticker's endless response.
"""

import json
import time

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.query.limits import (
    SPENT,
    Client,
    Places,
    RateLimiter,
    Spent,
    TrustedProxies,
    client_address,
    retry_after,
)

# Paths every client may call as often as it likes: probes and the page's own files.
UNLIMITED = ("/healthz", "/readyz", "/static/")
# Paths whose answers are held open for minutes (the live ticker's stream).
LONG_LIVED = ("/api/quotes/stream",)
# Paths the process's bound on requests in flight leaves out: its metrics are read
# most when it sheds, and the streams have places of their own.
UNCOUNTED = (*UNLIMITED, *LONG_LIVED, "/metrics")
# Answers that may be reused for a few seconds by the browser or a proxy.
CACHEABLE = ("/api/search", "/api/articles/", "/api/suggest", "/api/quotes/latest")
# A browser reads each answer as the type it is sent as, never as one it guesses: a
# stored title in a JSON body, or a feed, is never run as HTML, nor a page as script.
NOSNIFF = (b"x-content-type-options", b"nosniff")
SHED = Counter(
    "caravan_query_shed_total",
    "Requests answered 503 at once: the process already worked on its most at once.",
)


def app_path(scope: Scope) -> str:
    """The request's path within the app, whatever prefix a proxy mounts it under."""
    path: str = scope["path"]
    return path.removeprefix(scope.get("root_path", ""))


def client_of(scope: Scope, proxies: TrustedProxies) -> Client:
    """The client an HTTP request is counted against (see `client_address`)."""
    peer = scope["client"][0] if scope.get("client") else None
    forwarded = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    return client_address(peer, forwarded, proxies)


class RateLimitMiddleware:
    """The rate limit, charged by what each request's searches cost (`RateLimiter`), and
    at most `in_flight` requests of a client at once: a burst of slow searches would all
    reach Elasticsearch before the first was charged."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter | None,
        proxies: TrustedProxies,
        in_flight: Places | None = None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.proxies = proxies
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limiter is None or scope["type"] != "http" or app_path(scope).startswith(UNLIMITED):
            await self.app(scope, receive, send)
            return
        client = client_of(scope, self.proxies)
        wait = self.limiter.acquire(client, time.monotonic())
        if wait:
            await _too_many(send, f"too many requests; try again in {wait:.1f} s", wait)
            return
        # The live ticker's streams are held for minutes, and have places of their own.
        places = None if app_path(scope).startswith(LONG_LIVED) else self.in_flight
        if places is not None and places.take(client) is not None:
            self.limiter.refund(client)
            await _too_many(send, "too many requests at once from your address", 1.0)
            return
        record = Spent()
        token = SPENT.set(record)
        try:
            await self.app(scope, receive, send)
        finally:
            SPENT.reset(token)
            self.limiter.charge(client, record.ms)
            if places is not None:
                places.give_back(client)


class BusyMiddleware:
    """At most `most` requests worked on at once by this process, of all clients together;
    past it, a 503 at once. The per-client bounds leave many clients free to queue
    searches in the node until they time out for everyone; shed here, a reader is told
    to come back in a second. Probes, metrics, the page's files and the live ticker's
    streams are not counted (UNCOUNTED)."""

    def __init__(self, app: ASGIApp, most: int) -> None:
        self.app = app
        self.most = most  # 0: no bound
        self.taken = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.most or scope["type"] != "http" or app_path(scope).startswith(UNCOUNTED):
            await self.app(scope, receive, send)
            return
        if self.taken >= self.most:
            SHED.inc()
            await _too_many(send, "busy: too many requests at once; try again shortly", 1.0, 503)
            return
        self.taken += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.taken -= 1


async def _too_many(send: Send, detail: str, wait: float, status: int = 429) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry_after(wait).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CacheControlMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.header = (b"cache-control", f"public, max-age={int(seconds)}".encode())
        self.enabled = seconds > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or not app_path(scope).startswith(CACHEABLE)
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    message = {**message, "headers": [*headers, self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


class NoSniffMiddleware:
    """X-Content-Type-Options on every HTTP answer, whoever writes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new message and list: the ones sent may be shared (the ticker's list).
                message = {**message, "headers": [*message.get("headers", ()), NOSNIFF]}
            await send(message)

        await self.app(scope, receive, send_with_header)
