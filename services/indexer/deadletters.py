"""Looking after the dead-letter stream: list what is there, send entries back after a fix."""

from __future__ import annotations

from typing import cast

from pydantic import ValidationError

from services.indexer.ledger import CUT
from shared.clients import make_redis
from shared.events import DeadLetter
from shared.settings import Settings
from shared.streams import DATA_FIELD, Streams


async def list_dead_letters(settings: Settings, limit: int) -> list[tuple[str, DeadLetter]]:
    """Newest first: (dead-letter entry id, letter)."""
    streams = Streams(settings.common)
    async with make_redis(settings.redis) as redis:
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await redis.xrevrange(streams.deadletters, count=limit),
        )
    letters = []
    for entry_id, fields in entries:
        try:
            letter = DeadLetter.model_validate_json(fields[DATA_FIELD])
        except (KeyError, ValidationError):
            continue
        letters.append((entry_id.decode(), letter))
    return letters


async def replay_dead_letters(settings: Settings, ids: list[str]) -> dict[str, str]:
    """Re-add each letter's original fields to its origin stream, then delete the letter.

    The indexer writes with deterministic ids, so replaying an entry that did
    get indexed after all is harmless.
    """
    streams = Streams(settings.common)
    outcomes: dict[str, str] = {}
    async with make_redis(settings.redis) as redis:
        for entry_id in ids:
            found = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await redis.xrange(streams.deadletters, min=entry_id, max=entry_id),
            )
            if not found:
                outcomes[entry_id] = "not found"
                continue
            letter = DeadLetter.model_validate_json(found[0][1][DATA_FIELD])
            if CUT in letter.error_message:
                outcomes[entry_id] = "not replayed: the letter holds only the entry's start"
                continue
            fields: dict[bytes, bytes] = {k.encode(): v for k, v in letter.other_fields.items()}
            if letter.payload:
                fields[DATA_FIELD] = letter.payload
            new_id = cast(
                "bytes",
                await redis.xadd(
                    letter.stream,
                    fields,  # type: ignore[arg-type]
                    maxlen=streams.maxlen,
                    approximate=True,
                ),
            )
            await redis.xdel(streams.deadletters, entry_id)
            outcomes[entry_id] = f"replayed to {letter.stream} as {new_id.decode()}"
    return outcomes
