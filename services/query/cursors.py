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
Kind = Literal["score", "date", "keyword"]
# What Elasticsearch gives back for each sort of search.py's SORTS, value by value:
# `_score` a finite double; a date its epoch milliseconds, a long (a missing one is
# Long.MIN_VALUE, never null); the tiebreak, `canonical_url`, a keyword.
SORT_VALUES: dict[SortMode, tuple[Kind, ...]] = {
    "relevance": ("score", "date", "keyword"),
    "newest": ("date", "date", "keyword"),
}
_LONGS = range(-(2**63), 2**63)
# The offset is shown ("Viewing results …") and sent on in JSON: within the integers
# every JSON reader keeps exact (below this bound).
MAX_OFFSET = 2**53
# A score written as an integer (7 for 7.0) is one a double holds exactly.
_EXACT = 2**53


# Cursors of up to this many characters of JSON are written as they always were.
SHORT_CURSOR = 1024


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    offset: int
    sort: SortMode
    after: tuple[SortValue, ...]

    def encode(self) -> str:
        fields = {"o": self.offset, "s": self.sort, "a": list(self.after)}
        data = json.dumps(fields, separators=(",", ":"))
        if len(data) > SHORT_CURSOR:
            # Escaped, a letter past ASCII is six characters, and a URL's can make the
            # cursor longer than any the service reads back: as UTF-8, two or three bytes.
            data = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The cursor in `text`, its sort values each of the kind its sort gives."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    # RecursionError: a cursor of nested arrays deeper than the parser recurses.
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidCursor("cursor is not one this API issued") from exc
    if not isinstance(data, dict) or set(data) != {"o", "s", "a"}:
        raise InvalidCursor("cursor is not one this API issued")
    offset, sort, after = data["o"], data["s"], data["a"]
    if not isinstance(offset, int) or isinstance(offset, bool) or not 1 <= offset < MAX_OFFSET:
        raise InvalidCursor("cursor offset must be a positive integer")
    if sort not in SORT_MODES:
        raise InvalidCursor("cursor sort is unknown")
    kinds = SORT_VALUES[sort]
    if (
        not isinstance(after, list)
        or len(after) != len(kinds)
        or not all(_fits(value, kind) for value, kind in zip(after, kinds, strict=True))
    ):
        raise InvalidCursor("cursor sort values do not fit the sort")
    return Cursor(offset, sort, tuple(after))


def _fits(value: object, kind: Kind) -> bool:
    """Whether `value` is one Elasticsearch could have given for a sort of `kind`.

    Anything else is a forged cursor, refused here as a 400: a null or a string
    where a date goes fails inside Elasticsearch (a 500 it answers, the API's
    503); a number past a long or a double (2**64, NaN, Infinity) or a lone
    surrogate fails while the search body is written.
    """
    if isinstance(value, bool):
        return False
    if kind == "score":
        # An integer past a double raised OverflowError in isfinite (a 500); no score is one.
        if isinstance(value, int):
            return -_EXACT <= value <= _EXACT
        return isinstance(value, float) and math.isfinite(value)
    if kind == "date":
        return isinstance(value, int) and value in _LONGS
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
