"""Stream entries as commands, for a write that adds them together with what the
writer remembers of them, in one atomic script (shared/leases.py's fences).

A Redis failover can lose a write the old primary acknowledged. Written apart, the
entry could be lost while the writer's memory of it (ingest's state, the rate feed's
store) is kept, and it would never be published again. Written together, both are
kept or both are lost, and the writer publishes it again. The entry is the one
FastStream's publisher writes (shared/streams.py): the event's JSON in `__data__`,
with the trace context of a publish span.

`add_once` adds an entry that must be written once however often it is sent (a dead
letter), with a marker in the same script.
"""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry.propagate import inject
from pydantic import BaseModel
from redis.asyncio import Redis

from shared.leases import Command
from shared.streams import DATA_FIELD, TRACE_HEADERS

_tracer = trace.get_tracer(__name__)


def entry_command(stream: str, event: BaseModel, maxlen: int | None) -> Command:
    """XADD `event` to `stream` (trimmed to about `maxlen`), as a command."""
    # The span marks the publish and gives the event its context; the write itself is
    # the caller's atomic script, a moment later.
    with _tracer.start_as_current_span(
        f"{stream} publish",
        kind=trace.SpanKind.PRODUCER,
        attributes={"messaging.system": "redis", "messaging.destination.name": stream},
    ):
        carrier: dict[str, str] = {}
        inject(carrier)
    payload = event.model_dump(mode="json")
    payload |= {key: carrier[key] for key in TRACE_HEADERS if carrier.get(key)}
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    trim: tuple[str | int, ...] = ("MAXLEN", "~", maxlen) if maxlen else ()
    return ("XADD", stream, *trim, "*", DATA_FIELD, data)


def payload_bytes(command: Command) -> int:
    """The bytes of an `entry_command`'s payload, as a reader's limit counts them."""
    data = command[-1]
    return len(data) if isinstance(data, bytes) else len(str(data).encode())


# The entry is added with its marker in one step, or not at all: a write sent again after
# its answer was lost (a timeout mid-reply, the client's own retry, a reconnect) finds
# the marker and adds nothing. A marker of another type is not Caravan's: replaced.
# The marker is set after the XADD: a script is not rolled back, and a marker left by
# a refused XADD would stop the entry for good.
_ONCE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' then return 0 end
redis.call('XADD', KEYS[2], unpack(ARGV, 2))
if kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
"""


async def add_once(
    redis: Redis,
    marker: str,
    keep_seconds: float,
    stream: str,
    event: BaseModel,
    maxlen: int | None,
) -> bool:
    """Add `event` to `stream` as `entry_command` would, unless `marker` says it was added
    within `keep_seconds`; whether it was added now. `marker` shares the stream's slot."""
    _, _, *args = entry_command(stream, event, maxlen)
    keep_ms = max(int(keep_seconds * 1000), 1)
    added = await redis.eval(_ONCE, 2, marker, stream, keep_ms, *args)
    return bool(added)
