"""Prometheus metrics of the indexer."""

from prometheus_client import Counter, Gauge, Histogram

DOCUMENTS = Counter(
    "caravan_indexer_documents_total",
    "Documents handled, by index and outcome (stored, stale, rejected, hold).",
    ["index", "outcome"],
)
DEADLETTERS = Counter(
    "caravan_indexer_deadletters_total",
    "Entries sent to the dead-letter stream, by origin stream and error class.",
    ["stream", "error_class"],
)
BULK_SECONDS = Histogram(
    "caravan_indexer_bulk_seconds", "Duration of one bulk request to Elasticsearch."
)
IN_FLIGHT_LIMIT = Gauge(
    "caravan_indexer_in_flight_limit",
    "Bulk requests the indexer may have in flight now (adaptive, at most "
    "CARAVAN_INDEXER_MAX_IN_FLIGHT).",
)
BATCH_SIZE = Histogram(
    "caravan_indexer_batch_entries",
    "Entries per batch read from the streams.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500),
)
STREAM_LENGTH = Gauge("caravan_stream_length", "Entries in the stream.", ["stream"])
PENDING = Gauge(
    "caravan_stream_pending",
    "Entries delivered to the group and not yet acknowledged.",
    ["stream", "group"],
)
LAG = Gauge("caravan_stream_lag", "Entries not yet delivered to the group.", ["stream", "group"])
OLDEST_PENDING_SECONDS = Gauge(
    "caravan_stream_oldest_pending_seconds",
    "Age of the oldest entry pending in the group (0 when none).",
    ["stream", "group"],
)
TRIMMED_UNREAD = Counter(
    "caravan_stream_trimmed_unread_total",
    "Entries a MAXLEN cap (CARAVAN_STREAM_MAXLEN) trimmed before a configured group read "
    "them: lost to that group.",
    ["stream", "group"],
)
DEADLETTER_COUNT = Gauge("caravan_deadletters", "Entries in the dead-letter stream.")
HOLDING = Gauge(
    "caravan_indexer_holding",
    "1 while the indexer holds its entries: Elasticsearch cannot take writes, or Redis"
    " cannot settle them.",
)
HOLD_RETRIES = Counter(
    "caravan_indexer_hold_retries_total",
    "Bulk requests sent again after a cluster fault (429, 5xx, 401/403, unreachable).",
)
REDIS_RETRIES = Counter(
    "caravan_indexer_redis_retries_total",
    "Commands settling entries (acknowledge, dead_letter, note_error, read_error) sent to "
    "Redis again after it did not answer or refused, by what was being done.",
    ["doing"],
)
HELD_ENTRIES = Gauge(
    "caravan_indexer_held_entries",
    "Entries this indexer has read and not yet settled (their ownership is kept fresh).",
)
GROUP_ABANDONED = Gauge(
    "caravan_stream_group_abandoned",
    "1 for a consumer group neither configured nor active lately: not waited for, not "
    "kept from trimming (see `caravan groups`).",
    ["stream", "group"],
)
SAVED_SEARCHES = Gauge(
    "caravan_saved_searches", "Saved searches the indexer runs against the articles it stores."
)
MATCH_SECONDS = Histogram(
    "caravan_indexer_match_seconds",
    "Matching the saved searches against one round of stored articles (refresh, searches, "
    "publishing).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MATCHES = Counter(
    "caravan_indexer_matches_total",
    "SavedSearchMatch events published (a saved search matched an article just stored).",
)
MATCHES_OVER = Counter(
    "caravan_indexer_matches_over_day_total",
    "Matches not announced: their saved search had announced CARAVAN_INDEXER_MATCH_PER_"
    "SEARCH_DAY that day.",
)
MATCH_FAILURES = Counter(
    "caravan_indexer_match_failures_total",
    "Matching that failed, by reason: `elasticsearch` or `redis` (a round's articles go "
    "unmatched), `backlog` (a batch not matched: too many articles waiting), "
    "`saved_search` (one saved search the cluster refused, alone).",
    ["reason"],
)
UNMATCHED = Counter(
    "caravan_indexer_match_unmatched_articles_total",
    "Articles stored but not matched against every saved search, after a failure.",
)
MATCH_BACKLOG = Gauge("caravan_indexer_match_backlog", "Articles stored and waiting to be matched.")
