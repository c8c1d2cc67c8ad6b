"""Prometheus metrics of the rate feed (served on its /metrics)."""

from prometheus_client import Counter, Gauge

STALE = Gauge(
    "caravan_ratefeed_stale",
    "1 while the provider's newest rates are past their stale_after day, or none were read.",
    ["provider"],
)
LAST_SUCCESS = Gauge(
    "caravan_ratefeed_last_success_timestamp_seconds",
    "When the provider's document was last read and parsed.",
    ["provider"],
)
LAST_ERROR = Gauge(
    "caravan_ratefeed_last_error_timestamp_seconds",
    "When reading the provider last failed.",
    ["provider"],
)
POLL_ERRORS = Counter(
    "caravan_ratefeed_poll_errors_total",
    "Failed polls of a provider, by the class of the error (FetchError, RatesError, or "
    "anything its document made a parser raise: RecursionError, MemoryError, a bug).",
    ["provider", "error"],
)
QUOTES = Counter(
    "caravan_ratefeed_quotes_total",
    "Quotes by provider and outcome (published, quarantined, released, rederived).",
    ["provider", "outcome"],
)
LEFT_OUT = Counter(
    "caravan_ratefeed_left_out_total",
    "Entries of the provider's documents, and rates computed from them, left out as "
    "unusable (each logged as 'rate entry left out' with the reason), on every read.",
    ["provider"],
)
