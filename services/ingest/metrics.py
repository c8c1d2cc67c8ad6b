"""ingest's Prometheus metrics (served on /metrics by the shared health server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ITEMS = Counter(
    "caravan_ingest_items_total",
    "Articles a source listed, by outcome: new, updated, unchanged, failed, skipped.",
    ["source", "outcome"],
)
EXTRACTIONS = Counter(
    "caravan_ingest_extractions_total",
    "Articles published, by where their text came from: page (trafilatura) or feed.",
    ["source", "path"],
)
PARSE_FAILURES = Counter(
    "caravan_ingest_parse_failures_total",
    "Article pages whose parse ran out of time or memory or crashed (read from the "
    "source's fields, not fetched again until their lead changes), by error class.",
    ["source", "error"],
)
FETCHES = Counter(
    "caravan_ingest_fetches_total",
    "Documents requested, by outcome: ok, not_modified, refused, deferred, failed.",
    ["outcome"],
)
POLLS = Counter(
    "caravan_ingest_polls_total",
    "Polls of a source, by outcome: ok, failed.",
    ["source", "outcome"],
)
POLL_ERRORS = Counter(
    "caravan_ingest_poll_errors_total",
    "Failed polls of a source, by the class of the error (FetchError, FeedError, "
    "or an unexpected one: a bug).",
    ["source", "error"],
)
LAST_SUCCESS = Gauge(
    "caravan_ingest_last_success_timestamp_seconds",
    "When a poll of the source last succeeded.",
    ["source"],
)
LAST_ERROR = Gauge(
    "caravan_ingest_last_error_timestamp_seconds",
    "When a poll of the source last failed.",
    ["source"],
)
STREAM_LAG = Gauge(
    "caravan_ingest_articles_lag",
    "Entries of the articles stream not yet delivered to the slowest consumer group.",
)
BACKPRESSURE_WAITS = Counter(
    "caravan_ingest_backpressure_waits_total",
    "Times ingest paused because the articles stream's consumers were too far behind.",
)
