"""Log lines as every service writes them (shared/logging.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import VALUE_CHARS, VALUE_ITEMS, Sparse, configure_logging


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    configure_logging("test")
    [handler] = logging.getLogger().handlers
    out = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    yield out
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_a_long_value_is_clipped_and_says_how_long_it_was(
    lines: io.StringIO,
) -> None:
    # A hostile sitemap's 8 KB child addresses, and errors repeating them, at every poll.
    url = "https://s.kz/" + "a" * 8000
    structlog.get_logger("t").warning("child sitemap failed", sitemap=url, error=f"{url}: 404")
    logging.getLogger("library").warning("%s", url)  # through logging, as libraries do
    ours, library = (json.loads(line) for line in lines.getvalue().splitlines())
    assert ours["sitemap"] == f"{url[:VALUE_CHARS]}… ({len(url)} characters)"
    assert ours["error"].endswith(f"… ({len(url) + 5} characters)")
    assert len(library["event"]) < VALUE_CHARS + 30
    assert ours["event"] == "child sitemap failed"
    assert ours["service"] == "test"


def test_secrets_are_redacted(lines: io.StringIO) -> None:
    structlog.get_logger("t").info("connected", password="hunter2", host="es")
    [line] = (json.loads(line) for line in lines.getvalue().splitlines())
    assert (line["password"], line["host"]) == ("***", "es")


# A line's characters at most, whatever a value holds: a few values' bounds and the rest.
LINE_CHARS = 20 * VALUE_CHARS

NESTED: list[object] = []
for _ in range(5_000):
    NESTED = [NESTED, "x" * 10_000]


@pytest.mark.parametrize(
    "value",
    [
        [
            f"https://news.example/p{page}/feed{n}/" + "é" * 8000
            for page in range(5)
            for n in range(20)
        ],
        {f"key{n}" * 1000: "v" * 8000 for n in range(1000)},
        ("t" * 50_000,) * 1000,
        {"a": [{"b": ["c" * 50_000] * 100}] * 100},
        NESTED,
    ],
    ids=["listing feeds", "mapping", "tuple", "nested", "deep"],
)
def test_no_value_makes_a_long_line(lines: io.StringIO, value: object) -> None:
    structlog.get_logger("t").info("listing advertises feeds", feeds=value)
    [line] = lines.getvalue().splitlines()
    assert len(line) < LINE_CHARS
    assert json.loads(line)["event"] == "listing advertises feeds"


def test_a_long_list_says_how_many_items_it_had(lines: io.StringIO) -> None:
    feeds = [f"https://news.example/feed{n}" for n in range(100)]
    structlog.get_logger("t").info("listing advertises feeds", feeds=feeds, counts={"new": 3})
    [line] = (json.loads(line) for line in lines.getvalue().splitlines())
    assert line["feeds"] == [*feeds[:VALUE_ITEMS], f"… ({len(feeds)} items)"]
    assert line["counts"] == {"new": 3}


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_traceback_is_bounded_as_any_value(lines: io.StringIO, fmt: str) -> None:
    configure_logging("test", fmt=fmt)
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(lines)
    message = "x" * 5_000_000
    for logger in (structlog.get_logger("t"), logging.getLogger("library")):
        try:
            raise RuntimeError(message)
        except RuntimeError:
            logger.exception("source poll crashed")
    ours, library = lines.getvalue().split("source poll crashed")[1:]
    for line in (ours, library):
        assert len(line) < LINE_CHARS
        assert "RuntimeError: xxx" in line
        assert "(5000" in line  # how long the whole was


def test_a_sparse_line_is_due_once_a_period_with_the_count_of_those_left_out() -> None:
    now = [0.0]
    sparse = Sparse(60.0, clock=lambda: now[0])
    said = []
    for second in range(0, 150, 10):
        now[0] = second
        said.append((second, sparse.due()))
    assert [(second, n) for second, n in said if n is not None] == [(0, 0), (60, 5), (120, 5)]
