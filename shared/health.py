"""The small HTTP server every worker runs beside its work: /healthz, /readyz, /metrics.

/healthz answers while the event loop turns (liveness); /readyz runs the
service's own checks (Redis, Elasticsearch, ...) and answers 503 with the
details when one fails; /metrics is the Prometheus text format of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import make_asgi_app
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.clients import READY_TIMEOUT, REDIS_AWAY
from shared.httpserver import PipelineSafeHttpToolsProtocol


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, bool]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "checks": self.checks, "details": self.details}


ReadinessProbe = Callable[[], Awaitable[Readiness]]


async def redis_ready(redis: Redis, stream: str, *others: str) -> bool:
    """Whether Redis answers this service's user on its own streams, within
    READY_TIMEOUT. A PING passes where the user is refused its keys (an ACL made for
    another CARAVAN_STREAM_PREFIX, the likeliest slip): a read of an entry that cannot
    exist (0-0) does not. Bounded: the read goes to its slot's node, which a client
    tries again and again while it fails over, past a probe's own timeout."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            for key in (stream, *others):
                await redis.xrange(key, "0-0", "0-0")
    except (TimeoutError, *REDIS_AWAY):
        return False
    return True


def health_app(probe: ReadinessProbe) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        readiness = await probe()
        return JSONResponse(readiness.as_json(), status_code=200 if readiness.ready else 503)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            metrics_route(),
        ]
    )


class _Asgi:
    """An ASGI app as a route's endpoint: a plain function is taken for a handler."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def metrics_route() -> Route:
    """`/metrics` itself, for Prometheus: mounted, it answered with a redirect to
    `/metrics/`, which a scraper that follows none reads as down."""
    return Route("/metrics", _Asgi(make_asgi_app()))


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a service that owns the signals (FastStream does)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    def __init__(self, probe: ReadinessProbe, host: str, port: int) -> None:
        config = uvicorn.Config(
            health_app(probe),
            # Probes and scrapers are clients too: a head of megabytes, or one that
            # never ends, must not cost the worker beside it.
            http=PipelineSafeHttpToolsProtocol,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
        self._server = _EmbeddedServer(config)
        # Bound here, not inside uvicorn, so a taken port fails the start-up
        # with a plain OSError instead of uvicorn's sys.exit in a task.
        self._socket = socket.create_server((host, port), reuse_port=False)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True
