"""Bodies inflated with a bound: what the fetcher reads from a server it does not trust."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from shared.inflate import MAX_GZIP_MEMBERS, BodyRefused, BoundedDecoder

PAGE = "<p>Курс сома к доллару</p>".encode() * 200


def _decode(
    encoding: str | None, body: bytes, max_bytes: int = 1 << 20, chunk: int = 1000
) -> bytes:
    decoder = BoundedDecoder(encoding, max_bytes)
    return b"".join(decoder.feed(body[i : i + chunk]) for i in range(0, len(body), chunk))


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        (None, PAGE),
        ("identity", PAGE),
        ("gzip", gzip.compress(PAGE)),
        ("x-gzip", gzip.compress(PAGE)),
        ("GZIP", gzip.compress(PAGE)),
        ("deflate", zlib.compress(PAGE)),  # zlib-wrapped, as the standard says
        ("deflate", _raw_deflate(PAGE)),  # raw, as many servers send it
    ],
)
def test_each_accepted_encoding_decodes(encoding: str | None, body: bytes) -> None:
    assert _decode(encoding, body) == PAGE


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,deflate", "deflate, gzip"])
def test_stacked_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(BodyRefused, match="stacked"):
        BoundedDecoder(encoding, 1000)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "chunked"])
def test_encodings_not_asked_for_are_refused(encoding: str) -> None:
    with pytest.raises(BodyRefused, match="not accepted"):
        BoundedDecoder(encoding, 1000)


def test_a_corrupt_body_is_refused() -> None:
    with pytest.raises(BodyRefused, match="does not decode"):
        _decode("gzip", b"\x1f\x8b\x08\x00garbage" * 10)


def test_a_body_over_the_limit_is_refused() -> None:
    assert len(_decode(None, PAGE, max_bytes=len(PAGE))) == len(PAGE)
    with pytest.raises(BodyRefused, match="over the"):
        _decode(None, PAGE, max_bytes=len(PAGE) - 1)
    with pytest.raises(BodyRefused, match="over the"):
        _decode("gzip", gzip.compress(PAGE), max_bytes=len(PAGE) - 1)


def test_a_gzip_bomb_costs_the_limit_not_its_inflated_size() -> None:
    # 1 GiB of zeros is about 1 MB of gzip; one network chunk of it holds ~1 GB.
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)
    tracemalloc.start()
    try:
        with pytest.raises(BodyRefused, match="over the"):
            _decode("gzip", bomb, max_bytes=4 << 20, chunk=len(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The limit plus the chunk it came in, give or take zlib's windows: not 256 MiB.
    assert peak < 4 * (4 << 20) + 2 * len(bomb)


@pytest.mark.parametrize("body", [zlib.compress(PAGE), _raw_deflate(PAGE)], ids=["zlib", "raw"])
def test_deflate_whose_first_piece_is_one_byte_decodes(body: bytes) -> None:
    # Which deflate it is takes two bytes to tell; a server may send one first.
    decoder = BoundedDecoder("deflate", 1 << 20)
    assert decoder.feed(body[:1]) + decoder.feed(body[1:]) == PAGE
    assert _decode("deflate", body, chunk=1) == PAGE


def _finished(encoding: str, body: bytes, chunk: int = 1000) -> bytes:
    decoder = BoundedDecoder(encoding, 1 << 20)
    decoded = b"".join(decoder.feed(body[i : i + chunk]) for i in range(0, len(body), chunk))
    decoder.finish()
    return decoded


COMPRESSED = [
    ("gzip", gzip.compress(PAGE)),
    ("deflate", zlib.compress(PAGE)),
    ("deflate", _raw_deflate(PAGE)),
]


@pytest.mark.parametrize(("encoding", "body"), COMPRESSED, ids=["gzip", "zlib", "raw"])
def test_a_whole_compressed_body_finishes(encoding: str, body: bytes) -> None:
    assert _finished(encoding, body) == PAGE


@pytest.mark.parametrize(("encoding", "body"), COMPRESSED, ids=["gzip", "zlib", "raw"])
@pytest.mark.parametrize("cut", [1, 8, 40], ids=["last-byte", "trailer", "deep"])
def test_a_compressed_body_cut_short_is_refused(encoding: str, body: bytes, cut: int) -> None:
    # What was read decodes, so without the end's check a page cut short by a dying
    # server went out as the article's newest version.
    with pytest.raises(BodyRefused, match="ends before its compressed stream does"):
        _finished(encoding, body[:-cut])


def test_one_byte_of_deflate_is_refused_at_the_end() -> None:
    # Too short even to tell which deflate it is.
    with pytest.raises(BodyRefused, match="ends before"):
        _finished("deflate", b"\x78")


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_an_empty_body_finishes_whatever_its_encoding(encoding: str) -> None:
    # A 304 or a HEAD answer names the encoding its body would have had.
    assert _finished(encoding, b"") == b""


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_gzip_members_one_after_another_are_all_read(chunk: int) -> None:
    # Concatenated gzip files: the first member alone was a page cut short.
    body = gzip.compress(PAGE[:1000]) + gzip.compress(PAGE[1000:]) + gzip.compress(b"")
    assert _finished("gzip", body, chunk) == PAGE


def test_a_later_member_cut_short_is_refused() -> None:
    body = gzip.compress(PAGE[:1000]) + gzip.compress(PAGE[1000:])
    with pytest.raises(BodyRefused, match="ends before"):
        _finished("gzip", body[:-5])
    with pytest.raises(BodyRefused, match="ends before"):
        _finished("gzip", gzip.compress(PAGE) + b"\x1f")


@pytest.mark.parametrize("trailer", [b"\n", b"\r\n", b"not gzip at all" * 100])
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_what_follows_the_stream_is_ignored(encoding: str, trailer: bytes) -> None:
    # As browsers and urllib3 do: some servers end a body with a newline.
    body = gzip.compress(PAGE) if encoding == "gzip" else zlib.compress(PAGE)
    assert _finished(encoding, body + trailer, chunk=3) == PAGE


def test_gzip_members_are_bounded() -> None:
    empty = gzip.compress(b"")
    assert _finished("gzip", empty * MAX_GZIP_MEMBERS) == b""
    with pytest.raises(BodyRefused, match=f"more than {MAX_GZIP_MEMBERS} members"):
        _finished("gzip", empty * (MAX_GZIP_MEMBERS + 1))


def test_a_compressed_body_is_bounded_as_sent_too() -> None:
    # Bytes past the stream's end decode to nothing, so only this bounds them.
    with pytest.raises(BodyRefused, match="as sent"):
        _decode("gzip", gzip.compress(b"x") + b"\0" * 2000, max_bytes=1000)
