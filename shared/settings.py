"""All configuration, read from environment variables (documented in README.md)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Self
from urllib.parse import SplitResult, urlsplit

import structlog
from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.configfiles import TimeZoneName

_log = structlog.get_logger(__name__)


class SettingsError(Exception):
    """Settings that cannot be used: one line per problem, each naming its variable and
    never its value (a URL or a file may hold a secret)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _region_or_utc(value: str) -> str:
    # Elasticsearch takes Java's zone ids: a region (Area/Location) or UTC. The tz
    # database's old abbreviations (EST, HST, ROC) and its posix/ and right/ copies pass
    # Python's zoneinfo, and then every faceted search was refused.
    area = value.partition("/")[0]
    if value != "UTC" and (area == value or area in {"posix", "right", "SystemV"}):
        msg = f"time zone {value!r}: name a region, such as Asia/Tashkent, or UTC"
        raise ValueError(msg)
    return value


class _Settings(BaseSettings):
    """Base: reads `NAME` from the environment, or the file named by `NAME_FILE`.

    The `_FILE` form lets containers mount secrets instead of exposing them in env.
    An empty variable is an unset one (a line of .env.example uncommented as it is):
    an empty port or URL stopped every service, and an empty consumer name made every
    indexer replica one consumer.
    """

    model_config = SettingsConfigDict(env_ignore_empty=True, allow_inf_nan=False)

    # Secrets whose file the client follows (shared/clients.py): one not there yet at
    # start (a key an init job is still making) is waited for, not a failed start.
    _followed: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        prefix = cls.model_config.get("env_prefix", "")
        for name in cls.model_fields:
            variable = f"{prefix}{name}_FILE".upper()
            path = os.environ.get(variable)
            if not path or name in data:
                continue
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                if name not in cls._followed:
                    raise SettingsError(f"{variable}: no file at {path}") from None
            except OSError as exc:
                raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise SettingsError(f"{variable}: {path} is not UTF-8 text") from None
        return data

    @classmethod
    def from_env(cls) -> Self:
        """Read from the environment; what is wrong is raised as a SettingsError, whose
        lines name variables: pydantic's own message shows the input, a URL's password."""
        try:
            return cls()
        except ValidationError as exc:
            prefix = cls.model_config.get("env_prefix", "")
            raise SettingsError(
                *(_problem(prefix, error) for error in exc.errors(include_input=False))
            ) from None


def _problem(prefix: str, error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message  # a check of several settings, its message names them
    return f"{prefix}{error['loc'][0]}".upper() + f": {message}"


# Seconds a Redis reply may take before the client gives up on the connection. A
# blocking read (XREAD BLOCK) must ask for less, or an idle stream ends it as an error.
REDIS_READ_TIMEOUT = 5.0
LONGEST_BLOCK_MS = 4000
# The longest lease a replica may take (CARAVAN_INGEST_/RATEFEED_LEASE_SECONDS).
LONGEST_LEASE_SECONDS = 3600
# The longest poll interval (a source's, a rate provider's): shared/leases.py reads a
# due time further ahead as not written by Caravan, and works its item at once.
LONGEST_INTERVAL_SECONDS = 366 * 24 * 3600
BULK_MAX_BYTES = 5 * 1024 * 1024


class RedisSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: str = "redis://127.0.0.1:6379/0"
    # A Redis Cluster: `url` names some nodes, comma-separated (the others are
    # discovered; more than one, so that a client starting while one is down finds it). Give
    # CARAVAN_STREAM_PREFIX a hash tag (`{caravan}:`) so all of Caravan's keys
    # share one slot: the indexer reads both streams in one XREADGROUP, and leases
    # fence state writes in one script.
    cluster: bool = False
    username: str | None = None
    password: SecretStr | None = None
    ssl_ca_certs: str | None = None

    @model_validator(mode="after")
    def _ca_for_tls_only(self) -> RedisSettings:
        # The client passes the CA only to rediss://: with redis:// the password went in
        # clear while the operator believed the connection verified. A cluster seed
        # written `host:port` takes the first URL's scheme (shared/clients.py).
        if self.ssl_ca_certs and any(
            "://" in node and not node.lower().startswith("rediss://")
            for node in redis_nodes(self.url)
        ):
            msg = "REDIS_SSL_CA_CERTS is set, but REDIS_URL is not rediss:// (TLS)"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _seeds_name_nodes(self) -> RedisSettings:
        # Named by position, never shown: a seed may carry the password.
        for number, seed in enumerate(redis_nodes(self.url)[1:] if self.cluster else [], 2):
            if problem := cluster_seed_problem(seed):
                msg = f"REDIS_URL: cluster node {number} {problem}"
                raise ValueError(msg)
        return self


def redis_nodes(url: str) -> list[str]:
    """REDIS_URL's nodes, comma-separated (a cluster's seeds); blank ones left out."""
    return [node.strip() for node in url.split(",") if node.strip()]


def seed_parts(seed: str) -> SplitResult:
    """A cluster seed after the first, a URL or `host[:port]`, as a URL's parts: without
    a scheme urlsplit reads no host (every such seed became 127.0.0.1)."""
    return urlsplit(seed if "://" in seed else f"//{seed}")


def cluster_seed_problem(seed: str) -> str | None:
    """What is wrong with a cluster seed after the first."""
    parts = seed_parts(seed)
    try:
        parts.port  # noqa: B018 - read for its check
    except ValueError:
        return "has no valid port"
    return None if parts.hostname else "names no host"


class ElasticsearchSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="ELASTICSEARCH_")

    url: str = "http://127.0.0.1:9200"
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: str | None = None
    # Not 0: a request that never ends would hold its batch or page for ever.
    request_timeout: float = Field(default=30.0, gt=0)
    # The files the API key and password were read from (ELASTICSEARCH_API_KEY_FILE,
    # ELASTICSEARCH_PASSWORD_FILE): the client reads them again when they change, so
    # a rotated key is used without a restart (shared/clients.py).
    api_key_file: Path | None = None
    password_file: Path | None = None
    _followed: ClassVar[frozenset[str]] = frozenset({"api_key", "password"})

    @model_validator(mode="before")
    @classmethod
    def _follow_only_files_in_use(cls, data: object) -> object:
        # Runs before _Settings._read_secret_files (a subclass's validators come
        # first), so a value here was set directly: it wins, and its file is not followed.
        if isinstance(data, dict):
            for name in ("api_key", "password"):
                if name in data:
                    data.pop(f"{name}_file", None)
        return data


class CommonSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="CARAVAN_")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Namespaces let several deployments (or test runs) share one Redis and one cluster.
    stream_prefix: str = "caravan:"
    index_prefix: str = ""
    # Index layout, applied by the templates (and so by `caravan reindex`). Replicas
    # are a count ("1") or an auto-expand range ("0-1": none on one node, one as soon
    # as a second node can hold it, so a single node still goes green).
    index_shards: int = Field(default=1, ge=1, le=1024)
    index_replicas: str = Field(default="0-1", pattern=r"^(\d+|\d+-(\d+|all))$")
    # Copies of a shard that must be active before a write proceeds (`all`, or a
    # count including the primary): above 1, writes wait out (then fail and hold
    # on) a cluster that lost replicas, rather than be stored on one copy only.
    index_wait_for_active_shards: str = Field(default="1", pattern=r"^(all|[1-9]\d*)$")
    # Optional hard cap on each stream (XADD MAXLEN ~), a last guard for Redis
    # memory. Unset by default: the indexer trims by age instead, and never
    # below what a consumer group still has pending (see README, Events).
    stream_maxlen: int | None = Field(default=None, ge=1000)
    # Consumer groups that must never miss an entry (comma-separated): ingest waits
    # for them and trimming never passes them, however long they are away. Any
    # other group counts while one of its consumers talked to Redis within
    # `stream_group_abandon_hours`; after that it is reported as abandoned.
    stream_groups: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["indexer"])
    stream_group_abandon_hours: float = Field(default=24.0, gt=0)
    # Every write made through a lease also logs its fencing token to a stream of that
    # lease's (`…lease:audit:GROUP:ITEM`, capped): what `make chaos` checks fencing with.
    lease_audit: bool = False
    user_agent: str = "CaravanBot/0.1 (+https://github.com/caravan-news/caravan)"
    # Whose calendar readers' days are (an IANA zone): the days date filters name, the
    # months facets count and the dates pages show, in searches and saved searches alike.
    time_zone: Annotated[TimeZoneName, AfterValidator(_region_or_utc)] = "UTC"
    # Seconds a service gets on SIGTERM to finish what it holds before it is
    # cancelled; keep it below the orchestrator's own grace period.
    shutdown_grace: float = Field(default=25.0, gt=0)

    @field_validator("stream_groups", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @property
    def abandon_after_ms(self) -> int:
        return int(self.stream_group_abandon_hours * 3_600_000)


class IngestSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="CARAVAN_INGEST_")

    sources: Path = Path("samples/sources.toml")
    timeout: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Politeness per host: requests at once, and seconds between their starts
    # (a robots.txt Crawl-delay that asks for more wins).
    host_concurrency: int = Field(default=2, ge=1, le=16)
    host_delay: float = Field(default=1.0, ge=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Retries of 429, 5xx and timeouts; the backoff doubles from 1 s up to this cap,
    # and a Retry-After longer than the cap skips the document until the next poll.
    retries: int = Field(default=3, ge=0)
    retry_max_delay: float = Field(default=60.0, gt=0)
    # How long published articles and HTTP validators are remembered (bounds Redis).
    state_ttl_days: float = Field(default=30.0, gt=0)
    # Pause when the slowest consumer group of the articles stream is this far behind.
    max_lag: int = Field(default=100_000, ge=1)
    # Child sitemaps of an index fetched per poll at most; the next poll goes on
    # where this one stopped (newest lastmod, then least recently visited, first).
    sitemap_max_fetches_per_poll: int = Field(default=50, ge=1)
    # Replicas share the sources by lease (shared/leases.py): a dead replica's
    # sources are taken over within this many seconds; renewed every third of it.
    lease_seconds: float = Field(default=30.0, ge=1, le=LONGEST_LEASE_SECONDS)
    # Article pages are parsed in worker processes (shared/sandbox.py): this many, each
    # stopped after this many seconds on one page and capped at this much memory. A
    # worker peaked at 90 MB on the 20 largest pages of the extraction benchmark; its
    # cap must fit the container's memory with the others' and the service's
    # (docs/operations.md), or one page kills the whole container.
    parse_workers: int = Field(default=2, ge=1, le=64)
    parse_timeout: float = Field(default=20.0, gt=0)
    parse_memory_mb: int = Field(default=384, ge=256)
    # Articles of one feed, sitemap or listing read at once (fetch, parse, publish):
    # the pages a poll holds in memory at most (per-host politeness still applies).
    # 1 keeps a process's pages to one per source it polls; sources are polled at once,
    # which keeps the parse workers busy when there are several.
    articles_in_flight: int = Field(default=1, ge=1, le=64)


class FetchSettings(_Settings):
    """Fetching from the web, shared by the services that do it."""

    model_config = SettingsConfigDict(env_prefix="CARAVAN_FETCH_")

    # Hosts or CIDRs that may be fetched although internal (loopback, private,
    # link-local): comma-separated, empty by default, so no fetch reaches inside.
    allow: str = ""
    # Seconds: the most a server's Retry-After may defer its host, and its robots.txt
    # Crawl-delay space our requests; larger values (or nonsense) are capped.
    max_retry_after: float = Field(default=3600.0, gt=0)
    max_crawl_delay: float = Field(default=60.0, gt=0)


class RateFeedSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="CARAVAN_RATEFEED_")

    # The providers file (TOML): which rate providers to poll and how to cross-check them.
    providers: Path = Path("samples/rates.toml")
    # Poll interval of a provider that does not set its own.
    interval: float = Field(default=3600.0, gt=0, le=LONGEST_INTERVAL_SECONDS)
    timeout: float = Field(default=20.0, gt=0)
    # One provider's poll, the days it missed included: past it, the others' quotes are
    # published without it (a source answering a byte at a time held them all).
    provider_deadline: float = Field(default=300.0, gt=0)
    # Fetches go through the guarded fetcher (shared/fetcher.py) with these limits;
    # the address guard's exceptions are CARAVAN_FETCH_ALLOW.
    max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    retries: int = Field(default=3, ge=0)
    host_delay: float = Field(default=1.0, ge=0)
    # A jump no other provider confirms is accepted once the provider's next this
    # many as-of dates stay beyond the bound on the same side.
    jump_confirmations: int = Field(default=2, ge=1)
    # Quotes further apart than this many calendar days have a gap between them
    # (Friday to Monday is 3): no daily change, and a jump bound widened with the gap.
    gap_after_days: int = Field(default=3, ge=1)
    # One replica polls at a time, under a lease renewed every third of this:
    # a dead poller is replaced within this many seconds.
    lease_seconds: float = Field(default=30.0, ge=1, le=LONGEST_LEASE_SECONDS)


def default_consumer() -> str:
    # Unique per process: a restarted pod gets a new name, and its predecessor's
    # pending entries are reclaimed rather than silently owned by a ghost.
    return f"{socket.gethostname()}-{os.getpid()}"


class IndexerSettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="CARAVAN_INDEXER_")

    group: str = "indexer"
    consumer: str = Field(default_factory=default_consumer)
    batch_size: int = Field(default=1000, ge=1)
    block_ms: int = Field(default=1000, ge=1, le=LONGEST_BLOCK_MS)
    # An entry pending this long on any consumer is presumed abandoned and claimed.
    claim_idle_ms: int = Field(default=60_000, ge=1000)
    # Deliveries after which an entry that keeps failing goes to the dead letters.
    max_deliveries: int = Field(default=5, ge=1)
    retry_base_delay: float = Field(default=0.5, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)
    bulk_max_bytes: int = Field(default=BULK_MAX_BYTES, ge=1024)
    # Bytes one read or claim brings in (each stream's share, taken an entry at a time
    # until it is reached, so one entry at most past it): large articles come a few at
    # a time.
    read_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    # After a read that did not fill the batch, wait this long for more entries.
    linger_ms: int = Field(default=50, ge=0)
    # The most batches written at once (the adaptive limit moves below it, see
    # services/indexer/concurrency.py); also the bound on what the indexer holds
    # in memory while Elasticsearch is slow or away: max_in_flight + 1 batches (one is
    # decoded ahead while the others are written) of batch_size and read_max_bytes.
    max_in_flight: int = Field(default=2, ge=1, le=16)
    stats_interval: float = Field(default=5.0, gt=0)
    trim_interval: float = Field(default=60.0, gt=0)
    # Entries older than this are trimmed once every consumer group has them.
    retention_hours: float = Field(default=168.0, gt=0)
    # Saved searches run against the articles stored (services/indexer/matcher.py):
    # Lucene clauses per search of the _msearch, as estimated (halved while the cluster
    # refuses more); articles waiting to be matched at most (past it a batch is not
    # matched, and counted); days the content hash last announced per saved search
    # and article is remembered (a new version with the same text announces nothing);
    # matches one saved search announces a day at most (UTC days; the rest counted).
    match_max_clauses: int = Field(default=4000, ge=16)
    match_backlog: int = Field(default=10_000, ge=1)
    match_memory_days: float = Field(default=45.0, gt=0)
    match_per_search_day: int = Field(default=1000, ge=1)


class QuerySettings(_Settings):
    model_config = SettingsConfigDict(env_prefix="CARAVAN_QUERY_")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_page_size: int = Field(default=50, ge=1, le=500)
    # Hits counted exactly; past this `total` is a lower bound (cheaper on broad queries).
    exact_total_up_to: int = Field(default=10_000, ge=1)
    # Requests a second per client (token bucket, per process); 0 turns the limit off.
    rate_limit: float = Field(default=20.0, ge=0)
    rate_burst: int = Field(default=60, ge=1)
    # A request whose searches take Elasticsearch longer than this (their `took`) costs
    # one request of the limit per this many ms: within the limit, one client's long
    # texts of place names (500 ms each) kept the node's cores busy for everyone. 0:
    # every request costs one.
    rate_limit_search_ms: float = Field(default=25.0, ge=0)
    # Requests of one client the service works on at once (per process; its IPv6 /56 and
    # /48 four and sixteen times as many); past it, 429. With the rate limit only: a
    # burst of slow searches would all reach Elasticsearch before the first was charged.
    max_in_flight_per_client: int = Field(default=8, ge=1)
    # Requests of all clients the service works on at once (per process); past it, 503
    # with Retry-After. 0: no bound.
    max_in_flight: int = Field(default=64, ge=0)
    # Search and suggest answers are reused this long; 0 turns the cache off.
    cache_seconds: float = Field(default=5.0, ge=0)
    # Seconds one try of a request to Elasticsearch may take (then the next node, at most
    # three tries, then a 503): a person waits for a page, not for three times 30 s.
    search_timeout: float = Field(default=5.0, gt=0)
    # Open live-ticker (Server-Sent Events) connections per process; past it, 503.
    live_max_connections: int = Field(default=500, ge=1)
    # Of those, per client (as the rate limit counts clients: an address, an IPv6 /64,
    # its /56 and /48 four and sixteen times as many);
    # past it, 429: no one client can take the places everyone else's pages need.
    live_max_per_client: int = Field(default=4, ge=1)
    # The longest one stream stays open: then it ends and the page reconnects by itself.
    # Bounds how long a connection whose close is never seen holds its place.
    live_max_seconds: float = Field(default=600.0, gt=0)
    # Proxies whose X-Forwarded-For entries the rate limit believes: how many stand in
    # front (1: an Ingress controller), or their networks (comma-separated CIDRs).
    trusted_proxies: int = Field(default=0, ge=0)
    trusted_proxy_cidrs: str = ""
    # Significant digits of the rates (and amounts) the rate endpoints answer;
    # the index keeps the exact quotients.
    rate_digits: int = Field(default=10, ge=4, le=28)
    # /api/convert uses rates of one as-of date at most this many days before the
    # date asked (or before the newest rate of the two currencies).
    convert_window_days: int = Field(default=7, ge=0, le=366)
    # Where readers reach the service (`https://news.example`): the base of the absolute
    # links in feeds and saved searches. Unset: the address each request came to.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # The most saved searches kept (a POST past it is a 409). The indexer runs every one
    # against every batch it stores, so its matching cost grows with this number.
    saved_searches_max: int = Field(default=10_000, ge=1, le=1_000_000)
    # Saved searches one client may make (a token bucket per process: this many at once,
    # then one every 3600/N seconds); past it a POST is a 429. Without it one
    # client could fill the bound above for everyone else in minutes. 0 turns it off.
    saved_searches_per_client_hour: int = Field(default=20, ge=0, le=100_000)


class HealthSettings(_Settings):
    """The /healthz, /readyz and /metrics server of the worker services."""

    model_config = SettingsConfigDict(env_prefix="CARAVAN_HEALTH_")

    host: str = "127.0.0.1"
    # Unset: each service's own default (ingest 8081, ratefeed 8082, indexer 8083),
    # so they can share one host in `make run`.
    port: int | None = Field(default=None, ge=0, le=65535)


class TracingSettings(_Settings):
    """OpenTelemetry: tracing is on when an OTLP endpoint is set (standard variable)."""

    model_config = SettingsConfigDict(env_prefix="OTEL_EXPORTER_OTLP_")

    # e.g. http://otel-collector:4318; spans go to {endpoint}/v1/traces over HTTP.
    endpoint: str | None = None


@dataclass(frozen=True)
class Settings:
    """Every group of settings, read once at a service's (or command's) entry point
    and passed down from there: nothing below an entry point reads the environment.

    Tests build the groups they need directly (`CommonSettings(stream_prefix=...)`)
    and swap them in with `dataclasses.replace`.
    """

    common: CommonSettings
    redis: RedisSettings
    elasticsearch: ElasticsearchSettings
    ingest: IngestSettings
    fetch: FetchSettings
    ratefeed: RateFeedSettings
    indexer: IndexerSettings
    query: QuerySettings
    health: HealthSettings
    tracing: TracingSettings

    # CARAVAN_ variables that are no setting: what the services were started with and
    # do not read (a typo), logged as a warning when logging starts (log_unknown).
    unknown: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        groups: dict[str, _Settings] = {}
        problems: list[str] = []
        for name, group in _GROUPS.items():
            try:
                groups[name] = group.from_env()
            except SettingsError as exc:
                problems.extend(exc.problems)
        if problems:
            raise SettingsError(*problems)
        settings = cls(**groups, unknown=unknown_variables(os.environ))  # type: ignore[arg-type]
        problems = settings_problems(settings)
        if problems:
            raise SettingsError(*problems)
        return settings

    @classmethod
    def for_program(cls, program: str) -> Settings:
        """from_env() for a program: what is wrong goes to stderr a line a problem, as
        `program: settings: ...`, and the program exits with status 2, not a traceback."""
        try:
            return cls.from_env()
        except SettingsError as exc:
            for problem in exc.problems:
                # A path named by a *_FILE variable is quoted: nothing in it acts on a terminal.
                shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in problem)
                print(f"{program}: settings: {shown}", file=sys.stderr)
            raise SystemExit(2) from None

    def log_unknown(self) -> None:
        for name in self.unknown:
            _log.warning("unknown variable, not a setting", variable=name)


_GROUPS: dict[str, type[_Settings]] = {
    "common": CommonSettings,
    "redis": RedisSettings,
    "elasticsearch": ElasticsearchSettings,
    "ingest": IngestSettings,
    "fetch": FetchSettings,
    "ratefeed": RateFeedSettings,
    "indexer": IndexerSettings,
    "query": QuerySettings,
    "health": HealthSettings,
    "tracing": TracingSettings,
}

# CARAVAN_ variables of the scripts and tests (deploy/local, Makefile, compose), not
# of the services: not reported as unknown.
_SCRIPT_VARIABLES = frozenset(
    {
        "CARAVAN_EXTRACTION_BENCHMARK",
        "CARAVAN_FAULT_HOLD_SECONDS",
        "CARAVAN_IMAGE",
        "CARAVAN_KEEP_TEST_SERVERS",
        "CARAVAN_LOCAL_DIR",
        "CARAVAN_RECORD_QUERY_RESPONSES",
        "CARAVAN_UNLOCKED",
        "CARAVAN_VENV",
    }
)
_SCRIPT_PREFIXES = ("CARAVAN_ES_",)  # deploy/local/elasticsearch.sh's


def unknown_variables(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The CARAVAN_ variables in `environ` that name no setting (nor its _FILE form)."""
    known = {
        f"{group.model_config.get('env_prefix', '')}{field}".upper()
        for group in _GROUPS.values()
        for field in group.model_fields
    }
    return tuple(
        sorted(
            name
            for name in environ
            if name.upper().startswith("CARAVAN_")
            and name.upper().removesuffix("_FILE") not in known
            and name.upper() not in _SCRIPT_VARIABLES
            and not name.upper().startswith(_SCRIPT_PREFIXES)
        )
    )


def has_hash_tag(prefix: str) -> bool:
    """Whether every key starting with `prefix` hashes to one Redis Cluster slot: its
    first `{` is closed within it, with something between."""
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


def settings_problems(settings: Settings) -> list[str]:
    """What is wrong across groups of settings, each naming its variables."""
    problems = []
    if settings.redis.cluster and not has_hash_tag(settings.common.stream_prefix):
        # Leases read and write several keys in one script: without one slot for all,
        # every one failed with CROSSSLOT while /readyz stayed green.
        problems.append(
            "CARAVAN_STREAM_PREFIX: with REDIS_CLUSTER=true it needs a hash tag, such as {caravan}:"
        )
    if settings.indexer.group not in settings.common.stream_groups:
        # Ingest's backpressure counts only these groups: without the indexer's, ingest
        # would never wait for it.
        problems.append(
            f"CARAVAN_INDEXER_GROUP: {settings.indexer.group} is not in CARAVAN_STREAM_GROUPS"
        )
    return problems
