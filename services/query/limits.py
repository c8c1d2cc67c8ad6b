"""Per-client rate limiting and a short-lived response cache, both in process memory.

Both take the time as an argument, so their rules are tested without clocks.
They hold at most `max_keys` entries and drop the least recently used, so a
flood of distinct clients or queries cannot grow the process without bound.

The client a request is counted against is the socket peer, unless proxies of
our own stand in front: each appends the address it saw to X-Forwarded-For, so
the entries they wrote are the rightmost ones, and everything to their left is
whatever the client chose to send. The client is therefore read from the right,
past the trusted proxies, never from the left.

An IPv6 client is counted per /64 network, not per address: a /64 is what one
home or host is given, and any of its 2^64 addresses is the client's to use, so
per address it could send each request from a fresh one and never be limited.
Providers also give one customer a /56 or a /48 (256 or 65,536 /64s), so each
request also counts against its /56 and /48, allowed four and sixteen times what
one client is (`SCALES`): a /48 has sixteen clients' allowance, not 65,536.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Hashable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

V = TypeVar("V")
T = TypeVar("T")
# Which cap refused a place: the client's own, or the process's.
Refusal = Literal["client", "process"]
# A client and the wider networks it is counted in as well, narrowest first (see the
# module's docstring): an IPv4 address alone; an IPv6 client's /64, its /56 and /48.
Client = tuple[str, ...]
IPV6_NETWORKS = (64, 56, 48)
# What each of a Client's networks is allowed, in allowances of the client itself.
SCALES = (1, 4, 16)


def allowance(base: int, level: int) -> int:
    """What the network at `level` of a Client (0: the client itself) is allowed."""
    return base * SCALES[level]


@dataclass
class _Bucket:
    tokens: float
    updated: float


MOST_TRUSTED_HOPS = 16
# The most a client's searches can put it in debt, in seconds of its rate.
MOST_DEBT_SECONDS = 30.0


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose X-Forwarded-For entries are believed: the nearest `hops` of
    them, or those with an address in `networks`. Neither: no proxy is believed."""

    hops: int = 0
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, hops: int, cidrs: str) -> TrustedProxies:
        """From the settings: a count of hops, or comma-separated CIDRs; ValueError on both."""
        networks = tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in cidrs.split(",")
            if part.strip()
        )
        if hops and networks:
            msg = (
                "set CARAVAN_QUERY_TRUSTED_PROXIES or CARAVAN_QUERY_TRUSTED_PROXY_CIDRS, "
                "not both: they would disagree on where the client is"
            )
            raise ValueError(msg)
        return cls(hops, networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], proxies: TrustedProxies
) -> Client:
    """The client a request is counted against, from the socket peer and the
    X-Forwarded-For header lines (in the order received): an IPv4 address, an IPv6
    client's /64 network then its /56 and /48 (`ipv6_client`), or the entry as written
    when it is no address."""
    chain = [entry.strip() for line in forwarded_for for entry in line.split(",") if entry.strip()]
    chain.append(peer or "unknown")
    if proxies.networks:
        # From the peer leftwards, past every address of a trusted proxy: the nearest
        # MOST_TRUSTED_HOPS of them at most, as each costs an address parse (a 60 KB
        # header of trusted addresses cost 30 ms a request, its 429s included).
        nearest = chain[-1 - MOST_TRUSTED_HOPS :]
        entry = next(
            (e for e in reversed(nearest) if not _trusted(e, proxies.networks)), nearest[0]
        )
    else:
        # The peer is the nearest proxy, each further hop one entry to the left; with
        # fewer entries than hops, the leftmost is the furthest anyone vouches for.
        entry = chain[max(0, len(chain) - 1 - proxies.hops)]
    address = _address(entry)
    if isinstance(address, ipaddress.IPv6Address):
        return ipv6_client(int(address))
    return (str(address or entry),)


def ipv6_client(address: int) -> Client:
    """An IPv6 client's keys: its networks' prefixes, in hex, with their lengths
    (`20010db800010002/64`); unique, and cheaper than an IPv6Network each."""
    return tuple(f"{address >> (128 - prefix):x}/{prefix}" for prefix in IPV6_NETWORKS)


def _trusted(entry: str, networks: tuple[IPNetwork, ...]) -> bool:
    address = _address(entry)
    return address is not None and any(address in network for network in networks)


def _address(entry: str) -> IPAddress | None:
    """The address in an X-Forwarded-For entry, which may carry a port (`[::1]:443`)."""
    host = entry
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    # One client, one key, whether it reached us over IPv4 or as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass
class Spent:
    """Elasticsearch's time (its `took`) on the searches of the request in progress."""

    ms: float = 0.0


# Set by the rate limit around each request it lets through; `charged` adds to it.
SPENT: ContextVar[Spent | None] = ContextVar("caravan_query_spent", default=None)


async def charged(search: Awaitable[T]) -> T:
    """Awaits an Elasticsearch search, adding what it cost to the request in progress
    (if one is counted): the answer's `took`; or the time waited when no answer came (a
    timeout: the cluster worked at least that long, and a retried one longer) or one
    without a `took` (a proxy's page)."""
    record = SPENT.get()
    if record is None:
        return await search
    started = time.monotonic()
    try:
        answer = await search
    except Exception:
        record.ms += (time.monotonic() - started) * 1000
        raise
    body = answer if isinstance(answer, Mapping) else getattr(answer, "body", None)
    took = body.get("took") if isinstance(body, Mapping) else None
    record.ms += took if isinstance(took, int) else (time.monotonic() - started) * 1000
    return answer


class RateLimiter:
    """Token bucket per client: `rate` requests a second on average, bursts up to `burst`;
    a client's wider networks (`Client`) each have a bucket of their `allowance`. With
    `search_ms`, a request whose searches took Elasticsearch longer than that costs one
    request per `search_ms` (`charge`): the limit then bounds what a client costs the
    cluster, not only how often it asks."""

    def __init__(
        self, rate: float, burst: int, max_keys: int = 10_000, search_ms: float = 0.0
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.search_ms = search_ms
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def charge(self, client: Client, ms: float) -> None:
        """Takes what a request let through cost beyond its one token: `ms` of searching
        at a token per `search_ms`. The buckets may go below zero, the client's next
        requests waiting until the rate has paid it back, but never further than
        MOST_DEBT_SECONDS of it: searches that time out while the cluster is away cost
        an honest reader that long at most once it is back."""
        if self.search_ms <= 0 or ms <= self.search_ms:
            return
        extra = ms / self.search_ms - 1
        for level, key in enumerate(client):
            bucket = self._buckets.get(key)
            if bucket is not None:
                floor = -self.rate * SCALES[level] * MOST_DEBT_SECONDS
                bucket.tokens = max(floor, bucket.tokens - extra)

    def acquire(self, client: Client, now: float) -> float:
        """0 when the request may go on, else the seconds until it would be allowed.
        A request refused by any of the client's buckets takes from none of them and
        makes none: refusals cost their sender nothing, so they must not fill the
        table and push out the buckets of others (a /48's among them)."""
        tokens = [self._tokens(key, level, now) for level, key in enumerate(client)]
        if all(count >= 1 for count in tokens):
            for key, count in zip(client, tokens, strict=True):
                self._store(key, _Bucket(count - 1, now))
            return 0.0
        for key in client:
            if key in self._buckets:
                self._buckets.move_to_end(key)
        return max(
            (1 - count) / (self.rate * SCALES[level])
            for level, count in enumerate(tokens)
            if count < 1
        )

    def refund(self, client: Client) -> None:
        """Give back the token of a request that did nothing (a write refused)."""
        for level, key in enumerate(client):
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(float(allowance(self.burst, level)), bucket.tokens + 1)

    def _tokens(self, key: str, level: int, now: float) -> float:
        """The tokens `key`'s bucket holds at `now` (a full one for a key not seen)."""
        burst = float(allowance(self.burst, level))
        bucket = self._buckets.get(key)
        if bucket is None:
            return burst
        return min(burst, bucket.tokens + (now - bucket.updated) * self.rate * SCALES[level])

    def _store(self, key: str, bucket: _Bucket) -> None:
        self._buckets[key] = bucket
        self._buckets.move_to_end(key)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class Places:
    """What clients hold at once (open streams, requests in flight): at most `most` in
    all, `most_per_client` per client (and per wider network of a client, their
    `allowance`)."""

    def __init__(self, most: int | None, most_per_client: int) -> None:
        self.most = most  # None: no bound in all
        self.most_per_client = most_per_client
        self.taken = 0
        self._per_key: Counter[str] = Counter()

    def take(self, client: Client) -> Refusal | None:
        """None when `client` got a place, else the cap that refused it."""
        if any(
            self._per_key[key] >= allowance(self.most_per_client, level)
            for level, key in enumerate(client)
        ):
            return "client"
        if self.most is not None and self.taken >= self.most:
            return "process"
        self._per_key.update(client)
        self.taken += 1
        return None

    def give_back(self, client: Client) -> None:
        self.taken -= 1
        for key in client:
            self._per_key[key] -= 1
            if self._per_key[key] <= 0:
                # Forgotten at zero: a flood of distinct clients leaves nothing behind.
                del self._per_key[key]


def retry_after(wait: float) -> str:
    """A Retry-After header's whole seconds for `wait`: never 0, which would invite a retry now."""
    return str(max(1, round(wait)))


class TtlCache(Generic[V]):
    """Values kept for `seconds`; a `seconds` of 0 keeps nothing. At most `max_keys` of
    them, weighing at most `max_weight` together (as `put` is told they weigh): counted
    by keys alone, a thousand pages of 50 long hits grew the process by 125 MB."""

    def __init__(
        self, seconds: float, max_keys: int = 1_000, max_weight: int | None = None
    ) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self.max_weight = max_weight
        self._entries: OrderedDict[Hashable, tuple[float, V, int]] = OrderedDict()
        self._weight = 0

    def get(self, key: Hashable, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, value: V, now: float, weight: int = 0) -> None:
        if self.seconds <= 0 or (self.max_weight is not None and weight > self.max_weight):
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (now + self.seconds, value, weight)
        self._weight += weight
        while len(self._entries) > self.max_keys or (
            self.max_weight is not None and self._weight > self.max_weight
        ):
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        self._weight -= self._entries.pop(key)[2]
