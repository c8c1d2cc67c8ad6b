"""Prometheus metrics of the indexer."""

from prometheus_client import Counter, Histogram

DOCUMENTS = Counter(
    "caravan_indexer_documents_total",
    "Documents handled, by index and outcome (stored, stale, rejected, retry).",
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
BATCH_SIZE = Histogram(
    "caravan_indexer_batch_entries",
    "Entries per batch read from the streams.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500),
)
