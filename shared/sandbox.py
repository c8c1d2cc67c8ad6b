"""Parses of untrusted documents in worker processes bounded in time and memory.

trafilatura, lxml and feedparser are large parsers of whatever the web sends. Run in
the service's own process (or a thread of it, which shares its GIL), one page that
sends one of them into a long loop freezes the event loop: lease renewals, health
checks and every other source stop with it. Here each parse runs in a process of a
pool (pebble's): past its time limit the process is killed and replaced, its address
space is capped (a parse that wants more gets MemoryError there, not the kernel's OOM
killer here), and a crash or kill of a worker is one failed document, nothing more.

The workers are shared fairly between whoever parses (`parses_of`, a source's name):
a free worker goes to the waiting share holding the fewest, so one source whose every
page takes nearly the time limit holds one worker, not all of them in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import os
import resource
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

T = TypeVar("T")
# A worker is replaced after this many parses, so what a parser leaks stays bounded.
_TASKS_PER_WORKER = 200
# Resident memory past which a worker gives the heap it freed back after a parse. The C
# library keeps it for later: a page that took a worker to its cap left it holding about
# 230 MiB more than a fresh one (90 MiB) for its next 200 parses, both workers charged
# to the container as if always at the cap. Normal pages stay well below.
TRIM_ABOVE_BYTES = 192 << 20
_SHARE: ContextVar[str] = ContextVar("sandbox_share", default="")


@contextlib.contextmanager
def parses_of(share: str) -> Iterator[None]:
    """The sandbox's parses started in this context (and its tasks) are `share`'s."""
    token = _SHARE.set(share)
    try:
        yield
    finally:
        _SHARE.reset(token)


class ParseFailed(ValueError):
    """The document could not be parsed within the bounds: the document's fault.

    A ValueError, like every other refusal of bad input: the caller records the
    document as failed and does not try it again until it changes."""


@dataclass(frozen=True)
class SandboxLimits:
    workers: int = 2
    timeout: float = 20.0  # seconds per document
    memory_bytes: int = 1 << 30  # address space per worker


class Sandbox:
    """A pool of worker processes; `run(fn, *args)` runs `fn` in one of them.

    `fn` and its arguments and result cross a process boundary: module-level
    functions and picklable data only. `preload` names modules every worker has
    imported before its first task (forked from a server that imported them once).
    """

    def __init__(self, limits: SandboxLimits, preload: Sequence[str] = ()) -> None:
        self.limits = limits
        # forkserver: workers fork from a clean process, never from this one's
        # threads (a fork of a threaded process can inherit a held lock).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        self._pool = ProcessPool(
            max_workers=limits.workers,
            max_tasks=_TASKS_PER_WORKER,
            initializer=_limit_memory,
            initargs=(limits.memory_bytes,),
            context=context,
        )
        # At most one parse per worker is handed to the pool (its queue is first come,
        # first served); the rest wait here for their share's turn.
        self._turns = Turns(limits.workers)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker. ParseFailed when it runs out of time or memory or
        its worker dies; any other exception `fn` raises is raised here as it was."""
        async with self._turns.turn(_SHARE.get()):
            return await self._run(fn, args)

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        future = self._pool.schedule(_trimmed, args=(fn, *args), timeout=self.limits.timeout)
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout as exc:
            msg = f"not parsed within {self.limits.timeout:g}s (worker stopped)"
            raise ParseFailed(msg) from exc
        except MemoryError as exc:
            msg = f"over {self.limits.memory_bytes >> 20} MiB while parsing"
            raise ParseFailed(msg) from exc
        except RecursionError as exc:
            raise ParseFailed(f"nested too deeply to parse: {exc}") from exc
        except ProcessExpired as exc:
            raise ParseFailed(f"the parsing worker died ({exc})") from exc

    def close(self) -> None:
        """Stop the workers now: what they were parsing is abandoned."""
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()


class Turns:
    """`places` shared between named shares: a free place goes to the waiting share that
    holds the fewest, and among equals to the one given a place longest ago."""

    def __init__(self, places: int) -> None:
        self._free = places
        self._held: Counter[str] = Counter()
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._given: dict[str, int] = {}  # when each share was last given a place
        self._gifts = 0

    @contextlib.asynccontextmanager
    async def turn(self, share: str) -> AsyncIterator[None]:
        if self._free:  # then nobody waits
            self._free -= 1
            self._take(share)
        else:
            granted = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(share, deque()).append(granted)
            try:
                await granted  # taken for `share` when granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._release(share)  # given, then cancelled before it was used
                raise
        try:
            yield
        finally:
            self._release(share)

    def _take(self, share: str) -> None:
        self._held[share] += 1
        self._gifts += 1
        self._given[share] = self._gifts

    def _release(self, share: str) -> None:
        self._held[share] -= 1
        if not self._held[share]:
            del self._held[share]
        self._pass_on()

    def _pass_on(self) -> None:
        # Counted as the share's at once: two places freed in one turn of the loop go
        # to two shares, not both to the first.
        for share in sorted(self._waiting, key=lambda s: (self._held[s], self._given.get(s, 0))):
            queue = self._waiting.pop(share)
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if queue:
                queue.popleft().set_result(None)
                self._take(share)
                if queue:
                    self._waiting[share] = queue  # behind the others now
                return
        self._free += 1


def _limit_memory(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _trimmed(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker, which then gives back what it freed if it holds much."""
    try:
        return fn(*args)
    finally:
        if resident_bytes() > TRIM_ABOVE_BYTES:
            gc.collect()
            _malloc_trim()


def resident_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to ask
        ctypes.CDLL("libc.so.6").malloc_trim(0)
