"""structlog set-up shared by every service: one JSON object per line on stdout.

Context is bound once, where the work it names begins, with
`structlog.contextvars.bound_contextvars`, and carried by every line logged inside,
including lines from libraries that log through `logging`; no call passes it by hand:

- `service`: here, for the whole process;
- ingest: `source` for each poll of a source (services/ingest/worker.py);
- ratefeed: `provider` for each provider's poll, document and backfill, and
  `provider` with `base` while a quote is settled or released (services/ratefeed/worker.py);
- indexer: each batch, and `event_id` while an entry's event is handled
  (services/indexer/consumer.py).
"""

from __future__ import annotations

import itertools
import logging
import math
import reprlib
import sys
import time
from collections.abc import Callable, Mapping

import structlog

_REDACTED_KEYS = frozenset({"password", "api_key", "authorization", "secret", "token"})


def _redact(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    for key in event_dict.keys() & _REDACTED_KEYS:
        event_dict[key] = "***"
    return event_dict


# A value's characters at most in a line: URLs of 8 KB and errors that repeat them,
# logged for each of a hostile sitemap's 50 children at every poll, made 77 MB a day.
VALUE_CHARS = 1000
# A list's or mapping's items at most in a line, the rest counted: a hostile listing's
# feeds (8 KB addresses, 20 a page over 5 pages) made a 2.4 MB line at every poll.
VALUE_ITEMS = 20
# A traceback's characters at most: most are whole within it, one that repeats a
# message of megabytes is not.
TRACE_CHARS = 8 * VALUE_CHARS
_TRACES = frozenset({"exception", "stack"})
# The items of a list or mapping share their value's characters, each keeping at least
# this many; one nested past that share is shown as short text.
ITEM_CHARS = 100


def shortened(text: str, chars: int = VALUE_CHARS) -> str:
    """`text` cut to `chars`, saying how long it was."""
    return text if len(text) <= chars else f"{text[:chars]}… ({len(text)} characters)"


def clipped(value: object, chars: int = VALUE_CHARS) -> object:
    """`value` bounded for a line: text cut to `chars`, lists and mappings to their first
    VALUE_ITEMS items, whose text shares `chars`; other values as they are."""
    if isinstance(value, str):
        return shortened(value, chars)
    if not isinstance(value, list | tuple | set | frozenset | Mapping):
        return value
    if chars <= ITEM_CHARS:
        return clipped(reprlib.repr(value), chars)
    kept = list(
        itertools.islice(value.items() if isinstance(value, Mapping) else value, VALUE_ITEMS)
    )
    # Each level down has less: nesting ends in text, however deep it goes.
    share = max(ITEM_CHARS, chars // (len(kept) + 1))
    if isinstance(value, Mapping):
        cut = {clipped(str(key), share): clipped(item, share) for key, item in kept}
        if len(value) > len(kept):
            cut["…"] = f"({len(value)} items)"
        return cut
    items = [clipped(item, share) for item in kept]
    if len(value) > len(kept):
        items.append(f"… ({len(value)} items)")
    return items


def _clip(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    for key, value in event_dict.items():
        event_dict[key] = clipped(value, TRACE_CHARS if key in _TRACES else VALUE_CHARS)
    return event_dict


class Sparse:
    """Whether to log a line that may come with every request: at most once per
    `seconds`, each time with how many were not logged since the last."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._next = -math.inf
        self._suppressed = 0

    def due(self) -> int | None:
        """The lines suppressed since the last one logged, when this one is to be; else None."""
        now = self._clock()
        if now < self._next:
            self._suppressed += 1
            return None
        self._next = now + self._seconds
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    context: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # A traceback is rendered first, so that it is bounded too: it repeats the message.
    bounded: list[structlog.types.Processor] = [
        structlog.processors.format_exc_info,
        _redact,
        _clip,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *context,
            structlog.processors.StackInfoRenderer(),
            *bounded,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*context, *bounded],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP client libraries log every request at INFO: that is noise here.
    for noisy in ("elastic_transport", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # With Elasticsearch away, each request logged its retries (with tracebacks) and its
    # node's failures, 2.5 KB a search: the services say so themselves, sparsely.
    for per_request in ("elastic_transport.transport", "elastic_transport.node_pool"):
        logging.getLogger(per_request).setLevel(max(logging.ERROR, root.level))
    # The tracing SDK warns, with no context, each time it cuts a span's attribute to
    # its bound (shared/tracing.py): a line an article with a long address.
    logging.getLogger("opentelemetry.attributes").setLevel(max(logging.ERROR, root.level))
    # FastStream and uvicorn bring their own handlers and formats: send their
    # records through ours instead, so every line is one JSON object.
    for name in ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access"):
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
