"""What every worker service does the same way: settings, logging, broker, lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import structlog
from faststream import FastStream
from faststream.redis import RedisBroker

from shared.clients import make_broker, make_redis
from shared.health import HealthServer, Readiness, ReadinessProbe, redis_ready
from shared.logging import configure_logging
from shared.runtime import settle_after_startup
from shared.settings import HealthSettings, Settings
from shared.streams import Streams
from shared.tasks import cancel_until_done
from shared.tracing import start_tracing

_log = structlog.get_logger("service")


class ServiceContext:
    """Connections a service builds once at start-up, from the settings its entry point read."""

    def __init__(self, service: str, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.common = settings.common
        self.redis_settings = settings.redis
        self.streams = Streams(self.common)
        self.broker: RedisBroker = make_broker(
            self.redis_settings, start_tracing(service, settings.tracing)
        )

    def configure_logging(self) -> None:
        configure_logging(self.service, self.common.log_level, self.common.log_format)
        self.settings.log_unknown()

    def redis_probe(self, stream: str) -> ReadinessProbe:
        """Readiness of a service whose only dependency is Redis, where it writes `stream`."""
        redis = make_redis(self.redis_settings)

        async def probe() -> Readiness:
            return Readiness({"redis": await redis_ready(redis, stream)})

        return probe


class BackgroundService:
    """A FastStream app that runs background tasks once the broker is up.

    Beside them it serves /healthz, /readyz (answered by `probe`) and /metrics.
    FastStream handles SIGINT/SIGTERM. On shutdown, `request_stop` (if given)
    asks the tasks to finish what they hold; they get `grace` seconds
    (CARAVAN_SHUTDOWN_GRACE) before being cancelled. Either way they end before the
    broker closes. A task that fails stops the service with exit status 1, so a
    supervisor restarts it. The health server listens on `health` (its port, when
    unset, is `health_port`).
    """

    def __init__(
        self,
        broker: RedisBroker,
        start_tasks: Callable[[], Iterable[Awaitable[None]]],
        *,
        probe: ReadinessProbe,
        grace: float,
        health: HealthSettings,
        health_port: int,
        request_stop: Callable[[], None] | None = None,
        on_closed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = FastStream(broker)
        self.failed = False
        self._start_tasks = start_tasks
        self._request_stop = request_stop
        self._on_closed = on_closed
        self._grace = grace
        self._tasks: list[asyncio.Task[None]] = []
        self._health_task: asyncio.Task[None] | None = None
        self._health = HealthServer(
            probe, health.host, health_port if health.port is None else health.port
        )
        self.app.after_startup(self._start)
        self.app.on_shutdown(self._stop)

    def main(self) -> None:
        settle_after_startup()
        asyncio.run(self.app.run())
        if self.failed:
            raise SystemExit(1)

    async def _start(self) -> None:
        self._health_task = asyncio.ensure_future(self._health.serve())
        self._health_task.add_done_callback(self._on_done)
        for awaitable in self._start_tasks():
            task = asyncio.ensure_future(awaitable)
            task.add_done_callback(self._on_done)
            self._tasks.append(task)
        _log.info("service started", tasks=len(self._tasks), health_port=self._health.port)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.failed = True
        _log.error("background task failed, stopping", exc_info=task.exception())
        self.app.exit()

    async def _stop(self) -> None:
        if self._request_stop is not None and self._tasks:
            self._request_stop()
            await asyncio.wait(self._tasks, timeout=self._grace)
        await cancel_until_done(self._tasks)
        # Last: /readyz and /metrics stay up while the work drains.
        self._health.stop()
        if self._health_task is not None:
            await self._health_task
        if self._on_closed is not None:
            await self._on_closed()
        _log.info("service stopped")
