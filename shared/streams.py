"""Stream names, the wire format of a stream entry, and what is asked of a publisher.

An entry holds one field, `__data__` (the field FastStream reads and writes),
whose value is the event as UTF-8 JSON. No envelope and no binary framing, so a
consumer in any language can read it with XREADGROUP and a JSON parser.

Trace context travels in the event itself: FastStream's telemetry middleware
puts `traceparent`/`tracestate` in the message headers, and this format writes
them as the event's top-level attributes (the CloudEvents tracing extension),
and reads them back into headers for FastStream consumers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from faststream.message import encode_message
from faststream.redis.message import DATA_KEY
from faststream.redis.parser import MessageFormat
from pydantic import BaseModel
from redis.asyncio import Redis

from shared.settings import CommonSettings

if TYPE_CHECKING:
    from fast_depends.library.serializer import SerializerProto
    from faststream.types import SendableMessage

DATA_FIELD = DATA_KEY.encode()
TRACE_HEADERS = ("traceparent", "tracestate")


class Streams:
    """The stream keys of one deployment."""

    def __init__(self, settings: CommonSettings) -> None:
        prefix = settings.stream_prefix
        self.articles = f"{prefix}articles"
        self.quotes = f"{prefix}quotes"
        self.deadletters = f"{prefix}deadletters"
        # Saved-search matches, published by the indexer for downstream consumers.
        self.matches = f"{prefix}matches"
        self.maxlen = settings.stream_maxlen

    @property
    def consumed(self) -> tuple[str, str]:
        """The streams the indexer consumes."""
        return (self.articles, self.quotes)


Event_contra = TypeVar("Event_contra", contravariant=True)


class Publisher(Protocol[Event_contra]):
    """The one call the services make on a stream publisher: publish an event.

    `broker.publisher(stream=...)` returns FastStream's StreamPublisher, a class the
    package does not export: the services depend on this call, not on that class.
    """

    async def publish(self, message: Event_contra, /) -> object: ...


async def add_events(
    redis: Redis, stream: str, events: Sequence[BaseModel], maxlen: int | None = None
) -> None:
    """Add `events` to `stream` in one round trip, each an entry of one field, `__data__`,
    its JSON: the bytes FastStream's publisher writes for the event, without its cost per
    message (a copy of the stream's settings and a round trip for each). For events
    published by the thousand, such as saved-search matches; they carry no trace context."""
    if not events:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            fields: dict[bytes, bytes] = {DATA_FIELD: event.model_dump_json().encode()}
            pipe.xadd(stream, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()


class Encoder(Protocol):
    """The part of a FastStream codec an encode uses. FastStream's own protocol for it is
    private (`faststream._internal`); this one is satisfied by every codec it passes."""

    async def encode(
        self,
        msg: SendableMessage,
        serializer: SerializerProto | None = None,
    ) -> tuple[bytes, str | None]: ...


class JsonMessageFormat(MessageFormat):
    """FastStream message format that writes the body alone, as JSON."""

    __slots__ = ()

    @classmethod
    async def encode(
        cls,
        *,
        message: Sequence[SendableMessage] | SendableMessage,
        reply_to: str | None,
        headers: dict[str, Any] | None,
        correlation_id: str,
        serializer: SerializerProto | None = None,
        codec: Encoder | None = None,
    ) -> bytes:
        payload, _ = (
            await codec.encode(message, serializer)
            if codec
            else encode_message(message, serializer)
        )
        trace = {key: headers[key] for key in TRACE_HEADERS if headers and headers.get(key)}
        if not trace or not payload.startswith(b"{"):
            return payload
        event = json.loads(payload)
        event.update(trace)
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes) -> tuple[bytes, dict[str, Any]]:
        headers: dict[str, Any] = {"content-type": "application/json"}
        if b'"traceparent"' in data:  # only then is parsing worth it
            with contextlib.suppress(ValueError, AttributeError):
                event = json.loads(data)
                headers |= {key: event[key] for key in TRACE_HEADERS if event.get(key)}
        return data, headers
