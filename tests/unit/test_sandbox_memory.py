"""A parse that took much memory does not leave its worker holding it for the next."""

from __future__ import annotations

from shared.sandbox import TRIM_ABOVE_BYTES, Sandbox, SandboxLimits, resident_bytes

# Kept by the worker across parses: the last chunk, so that what is freed below it stays
# inside the heap, as a parser's many small allocations leave it.
_PINNED: list[bytes] = []


def _heavy() -> int:
    """About 300 MB in small pieces, all freed but the last; the worker's memory then."""
    pieces = [bytes(1000) for _ in range(300_000)]
    _PINNED.append(bytes(1000))
    del pieces
    return resident_bytes()


async def test_a_worker_gives_back_what_a_heavy_parse_freed() -> None:
    # A page that took a worker to its cap left it 230 MiB over a fresh one's 90 for its
    # next 200 parses: the container charged for both workers as if always at the cap.
    sandbox = Sandbox(SandboxLimits(workers=1, memory_bytes=1 << 30))
    try:
        await sandbox.run(_heavy)
        assert await sandbox.run(resident_bytes) < TRIM_ABOVE_BYTES
    finally:
        sandbox.close()
