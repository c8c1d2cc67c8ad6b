"""Stream entries as commands, for a write that adds them together with what the
writer remembers of them, in one atomic script (shared/leases.py's fences).

A Redis failover can lose a write the old primary acknowledged. Written apart, the
entry could be lost while the writer's memory of it (ingest's state, the rate feed's
store) is kept, and it would never be published again. Written together, both are
kept or both are lost, and the writer publishes it again. The entry is the one
FastStream's publisher writes (shared/streams.py): the event's JSON in `__data__`,
with the trace context of a publish span.
"""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry.propagate import inject
from pydantic import BaseModel

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
