"""Factories for the connections every service makes: Redis, FastStream, Elasticsearch."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import orjson
import structlog
from elastic_transport import AsyncTransport, HttpHeaders, TransportApiResponse
from elasticsearch import ApiError, AsyncElasticsearch
from elasticsearch import TransportError as ESTransportError
from elasticsearch.serializer import (
    CompatibilityModeNdjsonSerializer,
    NdjsonSerializer,
    OrjsonSerializer,
)
from faststream.redis import RedisBroker, RedisClusterBroker
from faststream.redis.opentelemetry import RedisTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AuthenticationError,
    ClusterCrossSlotError,
    CrossSlotTransactionError,
    MaxConnectionsError,
    NoPermissionError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from shared.esnode import HttpNode
from shared.settings import (
    REDIS_READ_TIMEOUT,
    ElasticsearchSettings,
    RedisSettings,
    redis_nodes,
    seed_parts,
)
from shared.streams import JsonMessageFormat

log = structlog.get_logger(__name__)
# Redis away: refusing connections, timing out, failing over (CLUSTERDOWN, TRYAGAIN,
# MASTERDOWN, READONLY are ResponseErrors, "TTL exhausted" a ClusterError), or no node
# of a cluster answering (RedisClusterException, not a RedisError). What a loop that
# talks to Redis waits out instead of ending its service.
REDIS_AWAY = (RedisError, RedisClusterException, OSError)
# How Redis refuses a command its user may not run inside a script (outside one: NOPERM):
# 7.0's words, then 7.2's and later's ("ERR ACL failure in script: ...", redis-py
# leaving out the "ERR ").
_SCRIPT_REFUSED = ("The user executing the script can't", "ACL failure in script")
# What redis-py's blocking pool raises when no connection came free in its timeout.
_POOL_WAITED_OUT = "No connection available"
# What the cluster client raises, before sending, for a command whose keys are in
# several slots (Redis' own CROSSSLOT reply is a ClusterCrossSlotError).
_KEYS_IN_SLOTS = "all keys must map to the same key slot"


def redis_trouble(exc: BaseException) -> str:
    """What a Redis failure that a loop waits out is, for its warning. A refusal of the
    service's own user (its ACL rules, its password) lasts until an operator acts, and
    read as "unreachable" it sent them to look at the network."""
    if isinstance(exc, NoPermissionError) or (
        isinstance(exc, ResponseError) and str(exc).startswith(_SCRIPT_REFUSED)
    ):
        return "redis refused this service's user (its ACL rules)"
    if isinstance(exc, AuthenticationError):
        return "redis refused this service's credentials"
    # A key Caravan writes holds another type (set by hand, another team's): waited out
    # (the indexer holds rather than lose a dead letter), but never by the network.
    if isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc):
        return "a key holds another type than Caravan writes there: delete it"
    # Full (noeviction): it refuses writes, not connections, until memory is freed.
    if isinstance(exc, OutOfMemoryError):
        return "redis at maxmemory"
    # Lasts until an operator changes the prefix: no retry reaches another slot.
    if isinstance(exc, ClusterCrossSlotError | CrossSlotTransactionError) or (
        isinstance(exc, RedisClusterException) and _KEYS_IN_SLOTS in str(exc)
    ):
        return "keys in different cluster slots: CARAVAN_STREAM_PREFIX needs a {hash tag}"
    # This process' own cap on connections, reached (a cluster node's pool) or waited on
    # in vain (the blocking pool: Redis slow, or more calls at once than it holds).
    if isinstance(exc, MaxConnectionsError) or (
        isinstance(exc, RedisConnectionError) and str(exc).startswith(_POOL_WAITED_OUT)
    ):
        return "all of this service's redis connections in use"
    return "redis unreachable"


def wrong_type(answer: object) -> bool:
    """Whether Redis refused a command for its key holding another type than the command
    reads or writes: not Redis away, but a key Caravan did not write so."""
    return isinstance(answer, ResponseError) and str(answer).startswith("WRONGTYPE")


# Connections a service keeps to Redis. At rest it holds a few (CLIENT LIST: ingest
# with one source, 2); its bursts are bounded where they are made (a share's lease
# calls, shared/leases.py), and past this cap a call waits its turn rather than fail
# as with redis-py's default pool (100, not waiting). 50 keep up with what one event
# loop sends.
REDIS_MAX_CONNECTIONS = 50
# How long a call waits for a free connection, a backstop only: every connection comes
# free within a socket timeout or a blocking read's bound, so a longer wait means this
# process queues more calls than Redis answers. A lease's length by default.
REDIS_POOL_TIMEOUT = 30.0

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
    if settings.cluster:
        # Typed as Redis for its callers: RedisCluster has the same command methods,
        # and Caravan's keys that are used together share a hash tag (the stream
        # prefix), so every multi-key command, transaction and script stays in one
        # slot. It follows a failover by itself (MOVED, then a new slot map).
        # A write on a connection torn down under it (redis/redis-py#4287, or the
        # topology refresh after a failover closing a connection another task writes
        # on) is a plain ConnectionError, which the cluster client retries: redis-py
        # 8.2, the locked version and the lower bound, raises it itself, so Caravan
        # keeps no connection class of its own (tests/cluster/test_redis_torn_writes.py).
        # Its pool cannot wait for a connection (redis-py has no blocking one for the
        # asyncio cluster client, redis/redis-py#2522): past its 100 a node, a call fails.
        first, *others = redis_nodes(settings.url)
        cluster = RedisCluster.from_url(
            first,
            health_check_interval=15,
            socket_timeout=REDIS_READ_TIMEOUT,
            **_redis_options(settings),
            startup_nodes=[ClusterNode(*_host_port(url)) for url in others],
        )
        return cast("Redis", cluster)
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_TIMEOUT,
        health_check_interval=15,
        socket_timeout=REDIS_READ_TIMEOUT,
        retry_on_timeout=True,
        **_redis_options(settings),
    )
    return Redis.from_pool(pool)


def _host_port(seed: str) -> tuple[str, int]:
    """A seed after the first: only its host and port are used, the first URL's scheme
    and credentials apply to every node."""
    parts = seed_parts(seed)
    if not parts.hostname:  # refused with the settings (cluster_seed_problem)
        raise ValueError("REDIS_URL: a cluster node names no host")
    return parts.hostname, parts.port or 6379


def make_broker(
    settings: RedisSettings, tracer_provider: TracerProvider | None = None
) -> RedisBroker:
    # With tracing on, FastStream opens a span per publish and puts its context in
    # the message headers, which JsonMessageFormat writes into the event.
    middlewares = (
        (RedisTelemetryMiddleware(tracer_provider=tracer_provider),) if tracer_provider else ()
    )
    if settings.cluster:
        first, *others = redis_nodes(settings.url)
        return RedisClusterBroker(
            first,
            startup_nodes=[_host_port(url) for url in others],
            message_format=JsonMessageFormat,
            middlewares=middlewares,
            **_redis_options(settings),
        )
    return RedisBroker(
        settings.url,
        message_format=JsonMessageFormat,
        middlewares=middlewares,
        **_redis_options(settings),
    )


class SecretFile:
    """A secret mounted as a file, read again whenever the file changes.

    Checked with one stat() per request: a Kubernetes Secret update swaps a
    symlink (a new inode), an operator's edit changes size or mtime.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._unreadable = False
        self.value = ""
        self.refresh()

    def refresh(self) -> bool:
        """Read the file again if it changed; whether the secret did."""
        try:
            stat = self.path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if seen == self._seen:
                return False
            value = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            # Mid-rotation the file can be missing for a moment: keep the last secret.
            if not self._unreadable:
                log.warning(
                    "credential file unreadable, keeping the last one read",
                    path=str(self.path),
                    error=type(exc).__name__,
                )
            self._unreadable = True
            return False
        self._seen, self._unreadable = seen, False
        changed, self.value = value != self.value, value
        return changed


class _FileCredentialTransport(AsyncTransport):
    """Authenticates every request with what the credential file holds now.

    At the transport, so every copy of the client made by `options()` (the
    readiness probe's, say) sends the rotated credential too.
    """

    secret: SecretFile
    username: str | None = None  # None: the file holds an API key

    async def perform_request(  # type: ignore[override]
        self, method: str, target: str, **options: Any
    ) -> TransportApiResponse:
        if self.secret.refresh():
            log.info(
                "elasticsearch credential read again from its file", path=str(self.secret.path)
            )
        headers = HttpHeaders(options.get("headers") or {})
        if self.username is None:
            headers["authorization"] = f"ApiKey {self.secret.value}"
        else:
            token = base64.b64encode(f"{self.username}:{self.secret.value}".encode()).decode()
            headers["authorization"] = f"Basic {token}"
        options["headers"] = headers
        return await super().perform_request(method, target, **options)


# A UTF-16 half with no other: JSON may spell one (`"\\ud800"`), no UTF-8 text holds it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _OrjsonAnyText(OrjsonSerializer):
    """orjson, but an answer in which a string holds a lone surrogate is read with U+FFFD
    for it. Elasticsearch keeps and returns one another writer stored; orjson refuses
    the whole answer, so one such document failed every page that showed it."""

    def json_loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return without_lone_surrogates(json.loads(data))


def without_lone_surrogates(value: Any) -> Any:
    """`value` (parsed JSON) with U+FFFD for each lone surrogate in its strings."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            without_lone_surrogates(key): without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


class _NdjsonAsIs(NdjsonSerializer):
    """Sends an NDJSON body of bytes that ends in a newline as it is.

    The library's own copies such a body twice (into a bytearray, then back into bytes):
    for the indexer's 5 MB bulk bodies about a tenth of its CPU. Anything else is
    serialised as the library does.
    """

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes) and data.endswith(b"\n"):
            return data
        return super().dumps(data)


class _CompatibilityNdjsonAsIs(_NdjsonAsIs, CompatibilityModeNdjsonSerializer):
    pass


def make_elasticsearch(settings: ElasticsearchSettings) -> AsyncElasticsearch:
    options: dict[str, Any] = {}
    if settings.ca_certs:
        options["ca_certs"] = settings.ca_certs
    if settings.api_key:
        options["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password:
        options["basic_auth"] = (settings.username, settings.password.get_secret_value())
    # A secret read from a *_FILE is followed: rotating it needs no restart, and one
    # not there yet at start is sent once it appears (refused meanwhile: the services wait).
    followed: Path | None = None
    if settings.api_key_file:
        followed, username = settings.api_key_file, None
    elif settings.password_file and settings.username and not settings.api_key:
        followed, username = settings.password_file, settings.username
    if followed is not None:
        options["transport_class"] = _FileCredentialTransport
    # Several nodes (comma-separated): a request that cannot reach one is
    # retried on the next, so losing a node of a cluster costs no write.
    urls = [with_default_port(url.strip()) for url in settings.url.split(",")]
    # About half of aiohttp's CPU per request, over HTTP and HTTPS alike.
    options["node_class"] = HttpNode
    es = AsyncElasticsearch(
        urls,
        request_timeout=settings.request_timeout,
        retry_on_timeout=True,
        max_retries=2,
        # JSON answers parsed by orjson (also for the compatibility mimetype): a search
        # answer in less than half the standard library's time.
        serializers={
            serializer.mimetype: serializer
            for serializer in (_OrjsonAnyText(), _NdjsonAsIs(), _CompatibilityNdjsonAsIs())
        },
        **options,
    )
    if followed is not None:
        transport = cast("_FileCredentialTransport", es.transport)
        transport.secret = SecretFile(followed)
        transport.username = username
    return es


def with_default_port(url: str) -> str:
    """The client insists on an explicit port; people write https://host for 443."""
    parts = urlsplit(url)
    if parts.port is not None:
        return url
    port = 443 if parts.scheme == "https" else 9200
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


async def elasticsearch_ready(es: AsyncElasticsearch, indices: str | None = None) -> bool:
    """True when the cluster answers and `indices` (a pattern; all if None) are at
    least yellow."""
    return await elasticsearch_refusal(es, indices) is None


async def elasticsearch_refusal(es: AsyncElasticsearch, indices: str | None = None) -> str | None:
    """Why the cluster is not ready (unreachable, a refused credential, `indices` not
    yellow); None if it is. A service names its own indices (IndexNames.owned): another
    team's red index is not its outage.

    Uses cluster health, not `ping()`/`info()`: the minimal distribution has no `GET /`.
    """
    try:
        # Bounded, without the client's retries: a probe must answer within the
        # orchestrator's probe timeout even while the cluster is black-holed.
        quick = es.options(request_timeout=READY_TIMEOUT, max_retries=0)
        health = await quick.cluster.health(index=indices, wait_for_status="yellow", timeout="1s")
    except (ESTransportError, OSError, TimeoutError) as exc:
        return f"unreachable: {type(exc).__name__}"
    except ApiError as exc:
        # 401/403 (an expired key, a missing privilege) or a 5xx: not ready, and the
        # probe must answer, not fail.
        log.debug("elasticsearch health refused", status=exc.status_code, error=str(exc))
        return str(exc)
    return "not yellow within 1 s" if health.get("timed_out", False) else None


async def wait_for_elasticsearch(es: AsyncElasticsearch, indices: str | None = None) -> None:
    """Wait until the cluster is ready; bound it with `asyncio.timeout` where needed."""
    while (refusal := await elasticsearch_refusal(es, indices)) is not None:
        # The reason, so that a refused credential is told apart from an outage.
        log.info("waiting for elasticsearch", reason=refusal)
        await asyncio.sleep(1)
