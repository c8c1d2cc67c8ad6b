"""Factories for the connections every service makes: Redis, FastStream, Elasticsearch."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError
from elasticsearch import TransportError as ESTransportError
from faststream.redis import RedisBroker
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis

from shared.settings import ElasticsearchSettings, RedisSettings
from shared.streams import JsonMessageFormat

log = structlog.get_logger(__name__)
# Seconds a readiness check may wait for Elasticsearch's answer.
READY_TIMEOUT = 2.5


def _redis_options(settings: RedisSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"username": settings.username}
    if settings.password:
        options["password"] = settings.password.get_secret_value()
    # TLS options are only accepted on rediss:// connections.
    if settings.url.startswith("rediss://") and settings.ssl_ca_certs:
        options["ssl_ca_certs"] = settings.ssl_ca_certs
    return options


def make_redis(settings: RedisSettings) -> Redis:
    return Redis.from_url(
        settings.url, health_check_interval=15, retry_on_timeout=True,
        **_redis_options(settings),
    )


def make_broker(settings: RedisSettings, tracer_provider: TracerProvider | None = None
                ) -> RedisBroker:
    # With tracing on, FastStream opens a span per publish and puts its context in
    # the message headers, which JsonMessageFormat writes into the event.
    middlewares = (RedisTelemetryMiddleware(tracer_provider=tracer_provider),
                   ) if tracer_provider else ()
    return RedisBroker(
        settings.url,
        message_format=JsonMessageFormat,
        middlewares=middlewares,
        **_redis_options(settings),
    )


def make_elasticsearch(settings: ElasticsearchSettings) -> AsyncElasticsearch:
    auth: dict[str, Any] = {}
    if settings.ca_certs:
        auth["ca_certs"] = settings.ca_certs
    if settings.api_key:
        auth["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password:
        auth["basic_auth"] = (settings.username, settings.password.get_secret_value())
    return AsyncElasticsearch(
        with_default_port(settings.url),
        request_timeout=settings.request_timeout,
        retry_on_timeout=True,
        max_retries=2,
        **auth,
    )


# Language analysers of the full distribution (its analysis-common module): the
# article mapping adds them as sub-fields, and searches use them, where present.
LANGUAGE_ANALYZERS = ("english", "russian")


async def has_language_analyzers(es: AsyncElasticsearch) -> bool:
    """Whether the cluster has them; the minimal distribution has not. Raises if unreachable."""
    try:
        await es.indices.analyze(analyzer=LANGUAGE_ANALYZERS[0], text="probe")
    except BadRequestError:
        return False
    return True


def with_default_port(url: str) -> str:
    """The client insists on an explicit port; people write https://host for 443."""
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 9200
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


async def elasticsearch_ready(es: AsyncElasticsearch) -> bool:
    """True when the cluster answers and is at least yellow.

    Uses cluster health, not `ping()`/`info()`: the minimal distribution has no `GET /`.
    """
    try:
        # Bounded, without the client's retries: a probe must answer within the
        # orchestrator's probe timeout even while the cluster is black-holed.
        quick = es.options(request_timeout=READY_TIMEOUT, max_retries=0)
        health = await quick.cluster.health(wait_for_status="yellow", timeout="1s")
    except (ESTransportError, OSError, TimeoutError):
        return False
    except ApiError as exc:
        # 401/403 (an expired key, a missing privilege) or a 5xx: not ready, and the
        # probe must answer, not fail; the reason is logged where writes are held.
        log.debug("elasticsearch health refused", status=exc.status_code, error=str(exc))
        return False
    return not health.get("timed_out", False)


async def wait_for_elasticsearch(es: AsyncElasticsearch) -> None:
    """Wait until the cluster is ready; bound it with `asyncio.timeout` where needed."""
    while not await elasticsearch_ready(es):
        log.info("waiting for elasticsearch")
        await asyncio.sleep(1)
