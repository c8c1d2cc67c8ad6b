"""Leases in Redis: work shared among replicas, one holder per item, with fencing.

The algorithm is the single-instance lock Redis documents (SET NX PX with a
value only the holder knows, renewed and released by scripts that first check
that value), plus fencing tokens as Kleppmann describes them: every new tenure
of a lease takes the next number of a counter that never goes down, and a
holder's writes go through a script that checks, atomically with the write,
that the lease still holds its token. A replica that stalled past its lease
(a GC pause, a partition) and woke up cannot write on it any more.

`WorkShare` spreads named items (ingest's sources) over the live replicas of a
group: each takes leases up to its fair share, ceil(items / live replicas);
one holding more than that gives back the items it is not working on, so a
replica that joins gets its share; a dead replica's leases expire after `ttl`
and the others take them over. When an item is next due is kept beside its
lease, so whoever holds it next keeps the schedule: no item is worked on twice
in one interval because its holder changed.

Keys: `{prefix}lease:{group}:{item}` (holder), `…:fence:{group}:{item}` (the
counter), `…:due:{group}:{item}` (epoch ms), `…:members:{group}` (live replicas),
and with `audit`, `…:audit:{group}:{item}`: a stream of the token of every write
accepted through the lease, so a run can check that no write of an older token was
accepted after one of a newer token (tests/chaos).
In Redis Cluster, the fenced writes and the lease key must share a slot: use a
hash-tagged prefix (`{caravan}:`).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, overload

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from shared.clients import REDIS_AWAY, redis_trouble, wrong_type
from shared.consumer import wait_or_stop
from shared.settings import LONGEST_INTERVAL_SECONDS, LONGEST_LEASE_SECONDS
from shared.tasks import cancel_until_done, to_the_end

log = structlog.get_logger(__name__)

Command = tuple[str | int | float | bytes, ...]
AnyRedis = Redis | RedisCluster
# Entries an audit stream keeps (about; see Lease.audit).
AUDIT_MAXLEN = 10_000
# How long a replica stopping spends handing its leases over (a few round trips): the
# work in hand may have had CARAVAN_SHUTDOWN_GRACE (25 s) of a container's 30 s already.
HAND_OVER_SECONDS = 2.0
# A holder or a member to last past ten of the longest leases is no replica's: judged
# by one bound for all, not by each replica's own lease, so that replicas rolling onto
# a longer one keep theirs.
FOREIGN_MS = 10 * LONGEST_LEASE_SECONDS * 1000
# Redis calls a share makes for its items at once (taking a lease, reading when it is
# due, a write under it): ingest starting with thousands of sources asked for them all
# together, past the cluster client's 100 connections a node, which refuses the rest
# at once. Well under that and under the single Redis' pool of 50 (shared/clients.py),
# so the heartbeat, which does not wait for these, always finds a connection.
CALLS_IN_FLIGHT = 32

# A holder key of another type, or one that never expires, is not a lease Caravan wrote
# (set by hand): it is no one's, and is taken over, or its item would go unworked for ever.
_HOLDS = """
local function holds(key, value)
  return redis.call('TYPE', key)['ok'] == 'string' and redis.call('GET', key) == value
end
"""
# Returns the token and what was replaced: 1 a holder, 2 a fence counter that was not one
# (restarted at the time in milliseconds, past any token INCR could have given). A
# holder set to outlive ten of the longest leases is not one either (ARGV[3]): its item
# went unworked for years. Nor is a counter below 1, or past 2**53: Lua's numbers are
# doubles, and from 10**14 on it wrote the token as `1e+14`, a holder no replica's value
# ever matched again.
_ACQUIRE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' then
  local left = redis.call('PTTL', KEYS[1])
  if left >= 0 and left <= tonumber(ARGV[3]) then return {0, 0} end
end
local replaced = kind == 'none' and 0 or 1
local counted, token = pcall(redis.call, 'INCR', KEYS[2])
if not counted or token < 1 or token >= 9007199254740992 then
  local now = redis.call('TIME')
  token = now[1] * 1000 + math.floor(now[2] / 1000)
  redis.call('SET', KEYS[2], token)
  replaced = replaced + 2
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%d', token), 'PX', ARGV[2])
return {token, replaced}
"""
_RENEW = (
    _HOLDS
    + """
if not holds(KEYS[1], ARGV[1]) then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
)
_RELEASE = (
    _HOLDS
    + """
if not holds(KEYS[1], ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
"""
)
# The live replicas, and how many were not: a key of another type in its place is
# replaced, or no replica could ever join; a member to expire past ten of the longest
# leases from now (set by hand, a restore) is none, or it counted as live for good and
# every replica's share shrank. Expiries are on Redis's clock: on each replica's own, one
# a lease behind the others was dropped at each of their beats, and one replica took
# every item while it sat idle. ARGV: the replica, its lease (ms), how far past now a
# replica's expiry may be (ms).
_BEAT = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
redis.call('ZADD', KEYS[1], string.format('%d', now + ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local farthest = now + ARGV[3]
local foreign = redis.call('ZREMRANGEBYSCORE', KEYS[1], string.format('(%d', farthest), '+inf')
return {redis.call('ZCARD', KEYS[1]), foreign}
"""
# Each command, from ARGV[i] on, as its length and its words, the key being the index
# of a KEYS entry (declared, so Redis Cluster routes it). A command Redis refuses ends
# the script there: what came before it stays written, nothing after it is.
_COMMANDS = """
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local command = {}
  for j = 1, n do command[j] = ARGV[i + j] end
  command[2] = KEYS[tonumber(command[2])]
  redis.call(unpack(command))
  i = i + n + 1
end
return 1
"""
# ARGV[1] the holder's value, then the commands.
_FENCED = _HOLDS + "if not holds(KEYS[1], ARGV[1]) then return 0 end\nlocal i = 2\n" + _COMMANDS
_UNFENCED = "local i = 1\n" + _COMMANDS


def _encode(
    commands: Sequence[Command], keys: list[str], argv: list[str | int | float | bytes]
) -> None:
    """`commands` added to a script's KEYS and ARGV, as _COMMANDS reads them."""
    for name, key, *args in commands:
        keys.append(str(key))
        argv.extend((len(args) + 2, name, len(keys), *args))


class LeaseLost(Exception):
    """The lease expired or passed to another replica: this one may not write on it."""


@dataclass(frozen=True)
class Lease:
    """One tenure of a lease: `token` is its fencing token (higher is later)."""

    redis: AnyRedis
    key: str
    owner: str
    token: int
    calls: asyncio.Semaphore = field(repr=False, compare=False)
    """Its share's bound on calls in flight (CALLS_IN_FLIGHT), which its writes count in."""
    audit: str | None = None
    """A stream to log each write's token to, in the write's own script (CARAVAN_LEASE_AUDIT)."""

    @property
    def value(self) -> str:
        return f"{self.owner}:{self.token}"

    async def write(self, commands: Sequence[Command]) -> None:
        """Run `commands` (each `(NAME, key, *args)`) only while this lease is held,
        atomically with the check; LeaseLost if it is not."""
        keys: list[str] = [self.key]
        argv: list[str | int | float | bytes] = [self.value]
        if self.audit is not None:
            logged = ",".join(str(command[1]) for command in commands)
            entry = ("token", self.token, "keys", logged)
            commands = [*commands, ("XADD", self.audit, "MAXLEN", "~", AUDIT_MAXLEN, "*", *entry)]
        _encode(commands, keys, argv)
        async with self.calls:
            written = await self.redis.eval(_FENCED, len(keys), *keys, *argv)
        if not written:
            raise LeaseLost(self.key)

    async def held(self) -> bool:
        try:
            async with self.calls:
                return bool(await self.redis.get(self.key) == self.value.encode())
        except ResponseError as exc:
            if not wrong_type(exc):  # another type: not this holder's (see _HOLDS)
                raise
            return False


class Fence(Protocol):
    """Where a worker's state writes go: through its lease, or straight in.

    A store is given its fence explicitly (`store.under(lease)`): what a call
    site writes with is in plain sight, never a side effect of taking a turn.
    """

    async def write(self, commands: Sequence[Command]) -> None:
        """Run `commands` (each `(NAME, key, *args)`) atomically; LeaseLost if fenced out."""
        ...


@dataclass(frozen=True)
class Unfenced:
    """For one-shot commands, which no other replica competes with: a script, as a
    lease's writes are. A MULTI ran every command but a refused one, so a hold was
    kept whose dead letter Redis had refused, and never lettered again."""

    redis: AnyRedis

    async def write(self, commands: Sequence[Command]) -> None:
        keys: list[str] = []
        argv: list[str | int | float | bytes] = []
        _encode(commands, keys, argv)
        await self.redis.eval(_UNFENCED, len(keys), *keys, *argv)


async def forget_foreign(fence: Fence, key: str, refusal: Exception) -> None:
    """A key of another type than Caravan keeps there (not written by Caravan) is
    forgotten, through the fence, as stored state that does not read is: left, every
    read and write of it was refused, and each refusal restarted the whole poll.
    Any other error is raised."""
    if not wrong_type(refusal):
        raise refusal
    log.warning("stored state of another type forgotten", key=key)
    await fence.write([("DEL", key)])


async def read_hash(redis: AnyRedis, fence: Fence, key: str) -> dict[bytes, bytes]:
    """A hash of a service's state; one of another type reads as none (forget_foreign)."""
    try:
        return cast("dict[bytes, bytes]", await redis.hgetall(key))
    except ResponseError as exc:
        await forget_foreign(fence, key, exc)
        return {}


class WorkShare:
    """Items of a group shared among its live replicas by lease (see the module)."""

    def __init__(
        self,
        redis: AnyRedis,
        prefix: str,
        group: str,
        items: Sequence[str],
        owner: str,
        ttl: float,
        rng: random.Random | None = None,
        *,
        audit: bool = False,
    ) -> None:
        self._redis = redis
        self._base = f"{prefix}lease"
        self._group = group
        self._items = list(items)
        self._owner = owner
        self._ttl_ms = int(ttl * 1000)
        # Renewals three times per lease: one lost round trip does not lose it.
        self._tick = ttl / 3
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._audit = audit
        self._held: dict[str, Lease] = {}
        self._busy: set[str] = set()
        self._live = 1
        # Item calls only: the heartbeat (join, keep, release_all) is one call at a time
        # and goes straight to Redis, never queued behind thousands of items.
        self._calls = asyncio.Semaphore(CALLS_IN_FLIGHT)

    def _key(self, kind: str, item: str) -> str:
        return f"{self._base}:{kind}:{self._group}:{item}"

    @property
    def _members(self) -> str:
        return f"{self._base}:members:{self._group}"

    @property
    def held(self) -> list[str]:
        return sorted(self._held)

    @property
    def tick(self) -> float:
        return self._tick

    @property
    def share(self) -> int:
        return math.ceil(len(self._items) / max(1, self._live))

    async def keep(self) -> None:
        """For ever: say this replica is alive, renew its leases, give back its excess."""
        while True:
            # Unrenewed leases may expire meanwhile: the fence refuses this replica's
            # writes on them, and the next beat finds them lost.
            await self._beat_or_warn("leases not renewed")
            await asyncio.sleep(self._tick)

    async def join(self) -> None:
        """The first beat, which tells this replica its fair share before it takes
        leases; retried while Redis is away (a replica starting during a failover)."""
        while True:
            if await self._beat_or_warn("not joined yet"):
                return
            await asyncio.sleep(self._tick)

    async def _beat_or_warn(self, warning: str) -> bool:
        """One beat; False, with `warning` logged and why, while Redis is away."""
        try:
            await self.beat()
        except REDIS_AWAY as exc:
            log.warning(f"{warning}: {redis_trouble(exc)}", error=str(exc))
            return False
        return True

    async def beat(self) -> None:
        live, foreign = await self._redis.eval(
            _BEAT, 1, self._members, self._owner, self._ttl_ms, FOREIGN_MS
        )
        if foreign:
            log.warning("members to expire past ten of the longest leases dropped", members=foreign)
        self._live = int(live)
        held = list(self._held.items())
        for (item, lease), renewed in zip(held, await self._each(_RENEW, held), strict=True):
            # The work under it may have found it lost (and dropped it) meanwhile.
            if not renewed and self._held.get(item) is lease:
                log.warning("lease lost", item=item, fence=lease.token)
                del self._held[item]
        excess = len(self._held) - self.share
        for item in [i for i in self._held if i not in self._busy][: max(0, excess)]:
            await self._give_back(item)

    async def _each(self, script: str, held: Sequence[tuple[str, Lease]]) -> list[Any]:
        """`script` on each lease, in one pipeline: a replica holding thousands of
        leases renews or hands them over in a few round trips, not one per lease."""
        if not held:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, lease in held:
                pipe.eval(script, 1, lease.key, lease.value, self._ttl_ms)
            return list(await pipe.execute())

    async def _give_back(self, item: str) -> None:
        # Busy since the excess was counted (its turn came while an earlier one was
        # handed over): kept, or the next holder polled it while this one still did.
        if item in self._busy:
            return
        lease = self._held.pop(item, None)
        if lease is None:  # found lost meanwhile by the work under it
            return
        await self._redis.eval(_RELEASE, 1, lease.key, lease.value)
        log.info("lease handed over", item=item, fence=lease.token)

    async def _try_acquire(self, item: str) -> Lease | None:
        key = self._key("holder", item)
        fence = self._key("fence", item)
        async with self._calls:
            # Counted once its call's turn comes: the leases taken while it waited count.
            if len(self._held) >= self.share:
                return None
            token, replaced = await self._redis.eval(
                _ACQUIRE, 2, key, fence, self._owner, self._ttl_ms, FOREIGN_MS
            )
        if replaced:
            log.warning(
                "lease keys not written by caravan, replaced",
                item=item,
                holder=bool(replaced & 1),
                fence=bool(replaced & 2),
            )
        if not token:
            return None
        audit = self._key("audit", item) if self._audit else None
        lease = Lease(self._redis, key, self._owner, token, self._calls, audit)
        self._held[item] = lease
        log.info("lease taken", item=item, fence=token)
        return lease

    @overload
    async def turn(self, item: str) -> Lease: ...

    @overload
    async def turn(self, item: str, stopping: asyncio.Event | None) -> Lease | None: ...

    async def turn(self, item: str, stopping: asyncio.Event | None = None) -> Lease | None:
        """Wait until this replica holds `item`'s lease and the item is due; it is
        then busy (never given back) until `done`. None once `stopping` is set."""
        stop = stopping or asyncio.Event()  # without one: an event never set
        while not stop.is_set():
            wait = self._tick * (0.5 + self._rng.random())
            try:
                lease = self._held.get(item) or await self._try_acquire(item)
                if lease is not None:
                    wait = min(
                        wait, seconds_until_due(await self._due(item), time.time() * 1000, item)
                    )
                    if wait <= 0 and self._held.get(item) is lease:
                        self._busy.add(item)
                        return lease
            except REDIS_AWAY as exc:
                log.warning(f"lease not taken: {redis_trouble(exc)}", item=item, error=str(exc))
            await wait_or_stop(stop, wait)
        return None

    async def _due(self, item: str) -> bytes | None:
        try:
            async with self._calls:
                return cast("bytes | None", await self._redis.get(self._key("due", item)))
        except ResponseError as exc:
            # Another type than `done` writes (set by hand): none, so due now, and
            # `done`'s SET replaces it. Taken for Redis away, it stalled the item for ever.
            if not wrong_type(exc):
                raise
            return b""

    async def done(self, item: str, next_in: float) -> None:
        """The item was worked on; it is next due in `next_in` seconds, whoever holds it."""
        self._busy.discard(item)
        lease = self._held.get(item)
        if lease is None:
            return
        due = int((time.time() + next_in) * 1000)
        try:
            await lease.write([("SET", self._key("due", item), due)])
        except LeaseLost:
            self._held.pop(item, None)
        except REDIS_AWAY as exc:
            # The schedule is not kept this time: the item is due again at once.
            log.warning(f"next turn not recorded: {redis_trouble(exc)}", item=item, error=str(exc))

    def lost(self, item: str) -> None:
        """The work found the lease lost (a fenced write refused) before a renewal did."""
        self._held.pop(item, None)

    async def release_all(self) -> None:
        """Hand every lease over now, not after it expires."""
        held = list(self._held.items())
        self._held.clear()
        await self._each(_RELEASE, held)
        await self._redis.zrem(self._members, self._owner)
        log.info("leases handed over", leases=len(held))

    async def hand_over(self) -> None:
        """On stop: `release_all` within HAND_OVER_SECONDS, however often the stop
        cancels meanwhile. Leases it could not hand over expire after their ttl: a
        stop with Redis away is still a stop, not a failure."""
        try:
            ended = await to_the_end(self.release_all(), HAND_OVER_SECONDS)
        except REDIS_AWAY as exc:
            log.warning(
                f"leases not handed over, they expire: {redis_trouble(exc)}", error=str(exc)
            )
            return
        if not ended:
            log.warning("leases not handed over in time, they expire", seconds=HAND_OVER_SECONDS)


# No interval or backoff Caravan schedules goes past it (settings and config files are
# bounded by it): a due time further ahead was not written by Caravan, and would leave
# its item unworked for ever.
LONGEST_DUE_MS = LONGEST_INTERVAL_SECONDS * 1000


def seconds_until_due(due: bytes | None, now_ms: float, item: str) -> float:
    """Seconds until an item is due, by its stored due time (`done`): at once when it
    has none, or one no Caravan wrote (not digits, or a year and more ahead)."""
    if due is None:
        return 0.0
    ahead = int(due) - now_ms if due.isdigit() and len(due) <= 16 else None
    if ahead is None or ahead > LONGEST_DUE_MS:
        log.warning("due time unreadable, due now", item=item, due=due[:64])
        return 0.0
    return ahead / 1000


async def lead(share: WorkShare, item: str, work: Callable[[Lease], Awaitable[None]]) -> None:
    """For ever: wait for `item`'s lease, run `work` under it while it is held, and cancel
    `work` the moment a renewal finds it lost (a stalled replica woke up late).

    For work that cannot be split by item (the rate feed cross-checks its
    providers against each other): one active replica, the others standing by.
    Work that ends with LeaseLost (a fenced write refused) waits for the lease too;
    work that ends because Redis is unreachable starts again when it answers.
    """
    while True:
        lease = await share.turn(item)
        log.info("leading", item=item)
        task = asyncio.ensure_future(work(lease))
        try:
            while not task.done() and item in share.held:
                await asyncio.wait({task}, timeout=share.tick)
        finally:
            # Its outcome is read below: with a cancel lost inside redis-py, the work ends
            # in its command's own (LeaseLost from a refused write, Redis unreachable).
            await cancel_until_done({task}, share.tick)
        error = None if task.cancelled() else task.exception()
        if isinstance(error, REDIS_AWAY):
            # Redis failing over: the work starts again once its lease answers.
            log.warning(f"work stopped: {redis_trouble(error)}", item=item, error=str(error))
            await asyncio.sleep(share.tick)
            continue
        if not task.cancelled() and not isinstance(error, LeaseLost):
            task.result()  # work that ended by itself: its error, or nothing
            return
        share.lost(item)
        log.warning("lease lost: work stopped until it is held again", item=item)
