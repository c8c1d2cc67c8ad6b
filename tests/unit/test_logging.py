"""Log lines as every service writes them (shared/logging.py)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import VALUE_CHARS, configure_logging


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
