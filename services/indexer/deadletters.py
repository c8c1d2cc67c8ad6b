"""Looking after the dead-letter stream: list what is there, send entries back after a fix."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis

from services.indexer.ledger import CUT, PublishDeadLetter
from shared.clients import make_redis
from shared.entries import add_once
from shared.events import DeadLetter
from shared.settings import Settings
from shared.streams import DATA_FIELD, Streams

# A stream entry's id, whole (milliseconds-sequence), as `deadletters list` shows it.
_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")


def letter_writer(redis: Redis, streams: Streams, keep_hours: float) -> PublishDeadLetter:
    """Writes a letter once per failed entry (its idempotency_key), however often it is
    sent: again after a lost answer, or by a replica that read the entry again after a
    crash between the letter and the acknowledgement. Whether it was written now.

    The marker is kept as long as the letters are (the retention), and shares the
    stream's hash slot through the stream prefix, as every key used together does.
    """

    async def write(letter: DeadLetter) -> bool:
        marker = f"{streams.deadletters}:written:{letter.idempotency_key}"
        return await add_once(
            redis, marker, keep_hours * 3600, streams.deadletters, letter, streams.maxlen
        )

    return write


async def list_dead_letters(settings: Settings, limit: int) -> list[tuple[str, DeadLetter | str]]:
    """Newest first: (dead-letter entry id, the letter, or why it does not read).

    A letter this version cannot read (another version's, or not one at all) is listed
    with the reason, never left out: the stream holds more than what was shown otherwise.
    """
    streams = Streams(settings.common)
    async with make_redis(settings.redis) as redis:
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await redis.xrevrange(streams.deadletters, count=limit),
        )
    return [(entry_id.decode(), read_letter(fields)) for entry_id, fields in entries]


def read_letter(fields: dict[bytes, bytes]) -> DeadLetter | str:
    """A dead-letter entry's letter, or why it is not one this version reads."""
    if DATA_FIELD not in fields:
        return f"unreadable: no {DATA_FIELD.decode()} field"
    try:
        return DeadLetter.model_validate_json(fields[DATA_FIELD])
    except ValidationError as exc:
        return f"unreadable: {exc.error_count()} errors, first {exc.errors()[0]['msg']}"


async def replay_dead_letters(settings: Settings, ids: list[str]) -> AsyncIterator[tuple[str, str]]:
    """Re-add each letter's original fields to its origin stream, then delete the letter;
    each id's outcome as it is known, so that whatever stops the run, what was done is said.

    The indexer writes with deterministic ids, so replaying an entry that did
    get indexed after all is harmless.
    """
    streams = Streams(settings.common)
    async with make_redis(settings.redis) as redis:
        for entry_id in ids:
            if not _ENTRY_ID.fullmatch(entry_id):
                # A time alone is a range to XRANGE: its first letter was replayed, and the
                # id given (another) deleted, so the letter stayed and went out again.
                yield entry_id, "not replayed: not a whole entry id (milliseconds-sequence)"
                continue
            found = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await redis.xrange(streams.deadletters, min=entry_id, max=entry_id),
            )
            if not found:
                yield entry_id, "not found"
                continue
            letter = read_letter(found[0][1])
            if isinstance(letter, str):
                yield entry_id, f"not replayed: {letter}"
                continue
            if CUT in letter.error_message:
                yield entry_id, "not replayed: the letter holds only the entry's start"
                continue
            if letter.stream not in streams.consumed:
                # A letter names its stream itself, and the rate feed's user may write
                # letters: replayed as written, a forged one had the operator's login add
                # to any stream or key (articles the rate feed may not write, matches).
                yield entry_id, f"not replayed: {letter.stream} is no stream the indexer reads"
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
            yield entry_id, f"replayed to {letter.stream} as {new_id.decode()}"
