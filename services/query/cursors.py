"""Opaque `search_after` cursors: how a reader goes past Elasticsearch's 10,000-hit window.

A cursor holds the offset of the next result (so a deep page still shows
"Viewing results 10001 - 10010"), the sort it was made for and the sort values
of the last hit. It is URL-safe base64 of compact JSON; anything that does not
decode to exactly that shape is refused with `InvalidCursor`, never passed on.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Literal

SortMode = Literal["relevance", "newest"]
SORT_MODES: tuple[SortMode, ...] = ("relevance", "newest")
SortValue = str | int | float | None
# What a sort value can be in Elasticsearch: a long, a finite double, a keyword, null.
_LONGS = range(-(2**63), 2**63)


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    offset: int
    sort: SortMode
    after: tuple[SortValue, ...]

    def encode(self) -> str:
        data = json.dumps(
            {"o": self.offset, "s": self.sort, "a": list(self.after)}, separators=(",", ":")
        )
        return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort_keys: int) -> Cursor:
    """The cursor in `text`; `sort_keys` is how many sort values its sort has."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    # RecursionError: a cursor of nested arrays deeper than the parser recurses.
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidCursor("cursor is not one this API issued") from exc
    if not isinstance(data, dict) or set(data) != {"o", "s", "a"}:
        raise InvalidCursor("cursor is not one this API issued")
    offset, sort, after = data["o"], data["s"], data["a"]
    if not isinstance(offset, int) or isinstance(offset, bool) or not 1 <= offset < 2**63:
        raise InvalidCursor("cursor offset must be a positive integer")
    if sort not in SORT_MODES:
        raise InvalidCursor("cursor sort is unknown")
    if (
        not isinstance(after, list)
        or len(after) != sort_keys
        or not all(_sort_value(v) for v in after)
    ):
        raise InvalidCursor("cursor sort values do not fit the sort")
    return Cursor(offset, sort, tuple(after))


def _sort_value(value: object) -> bool:
    """Whether `value` is one Elasticsearch could have given. A number past a long or a
    double (2**64, NaN, Infinity) is a forged cursor: refused here, as a 400, not
    left to fail while the search body is written."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return value in _LONGS
    return value is None or isinstance(value, str)
