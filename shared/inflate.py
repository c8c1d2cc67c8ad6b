"""Response bodies decoded with a bound on what they inflate to; pure.

A compressed body is decoded from the raw bytes here, not by the HTTP client:
the client inflates a whole network chunk before anyone can count it, so a few
kilobytes of gzip (stacked, `gzip, gzip`) become gigabytes before a limit on
the decoded body can fire. Here every step asks zlib for at most what the limit
still allows, and a stack of encodings is refused outright: no server needs one.
"""

from __future__ import annotations

import zlib
from typing import cast

from shared.fetch import FetchError

# What the fetcher asks for: the encodings this module decodes, and nothing else.
ACCEPT_ENCODING = "gzip, deflate"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_GZIP_MAGIC = b"\x1f\x8b"
# Each member costs a new inflater (about 10 µs): a body of a million empty members
# would hold the event loop for seconds. Concatenated files make a few.
MAX_GZIP_MEMBERS = 100


class BodyRefused(FetchError):
    """A body over the limit once decoded, or in an encoding this does not decode."""


class BoundedDecoder:
    """Feed raw chunks, get decoded ones; raises BodyRefused past `max_bytes` decoded
    (or sent), and from `finish` when the compressed stream stopped short."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._decoded = 0
        self._received = 0
        self._encoding = _single_encoding(content_encoding)
        # deflate's is made from its first two bytes (see feed), kept here until both came.
        self._inflater = zlib.decompressobj(_GZIP_WBITS) if self._encoding == "gzip" else None
        self._head = b""
        self._members = 1
        # Bytes after a gzip member, until two tell whether another member starts.
        self._after = b""
        self._ignoring = False

    def feed(self, raw: bytes) -> bytes:
        if self._encoding == "identity":
            return self._count(raw)
        # What follows the last member costs no decoding, so it is bounded here.
        self._received += len(raw)
        if self._received > self._max_bytes:
            raise BodyRefused(f"body over the {self._max_bytes}-byte limit as sent")
        if self._inflater is None:
            # "deflate" is zlib-wrapped by the standard, raw by many servers: the
            # first two bytes tell which (as browsers and httpx decide), and a server
            # may send them in two pieces.
            raw = self._head + raw
            if len(raw) < 2:
                self._head = raw
                return b""
            self._inflater = zlib.decompressobj(
                _ZLIB_WBITS if _is_zlib_header(raw) else _RAW_DEFLATE_WBITS
            )
        return self._inflate(raw)

    def finish(self) -> None:
        """Raises BodyRefused when a compressed body stopped before its stream's end: a
        page cut short (a proxy's or a dying server's) must not be read as the page."""
        if self._encoding == "identity" or not self._received:
            return  # nothing compressed came: a 304's, a HEAD's, an empty body
        if self._inflater is None or not self._inflater.eof or self._after == _GZIP_MAGIC[:1]:
            raise BodyRefused(f"{self._encoding} body ends before its compressed stream does")

    def _inflate(self, data: bytes) -> bytes:
        out: list[bytes] = []
        try:
            while data and not self._ignoring:
                inflater = cast("zlib._Decompress", self._inflater)
                if inflater.eof:
                    data = self._next_member(data)
                    continue
                # One byte past the limit: enough to know the body is over it.
                room = self._max_bytes - self._decoded + 1
                piece = inflater.decompress(data, room)
                out.append(self._count(piece))
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        except zlib.error as exc:
            raise BodyRefused(f"{self._encoding} body does not decode: {exc}") from exc
        return b"".join(out)

    def _next_member(self, data: bytes) -> bytes:
        """What to inflate next once a stream ended: the next gzip member (RFC 1952 lets
        them follow one another, and browsers and urllib3 read them all), or nothing,
        what follows being ignored as they ignore it."""
        self._after += data
        if self._encoding == "gzip" and len(self._after) < len(_GZIP_MAGIC):
            return b""
        if self._encoding != "gzip" or not self._after.startswith(_GZIP_MAGIC):
            self._ignoring, self._after = True, b""
            return b""
        if self._members == MAX_GZIP_MEMBERS:
            raise BodyRefused(f"gzip body of more than {MAX_GZIP_MEMBERS} members")
        self._members += 1
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        data, self._after = self._after, b""
        return data

    def _count(self, piece: bytes) -> bytes:
        self._decoded += len(piece)
        if self._decoded > self._max_bytes:
            raise BodyRefused(f"body over the {self._max_bytes}-byte limit once decoded")
        return piece


def _single_encoding(header: str | None) -> str:
    codings = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise BodyRefused(f"stacked content encodings refused: {header!r}")
    coding = codings[0] if codings else "identity"
    if coding == "x-gzip":
        coding = "gzip"
    if coding not in ("identity", "gzip", "deflate"):
        raise BodyRefused(f"content encoding {coding!r} not accepted (asked for {ACCEPT_ENCODING})")
    return coding


def _is_zlib_header(data: bytes) -> bool:
    # RFC 1950: method 8 (deflate) in the low nibble, the first two bytes a multiple of 31.
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
