"""The failure policy: whose fault a failed bulk write is, and what the indexer does."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, ConnectionError, ConnectionTimeout, HttpHeaders
from elasticsearch import ApiError, UnsupportedProductError

from services.indexer.bulk import ItemOutcome, classify_item
from services.indexer.failures import (
    Verdict,
    classify_request_error,
    describe_error,
    larger_than_the_cluster_takes,
    too_heavy_with_its_request,
)
from services.indexer.ledger import bounded, event_id_of, kept_of, read_note

# As Elasticsearch 9.2 words it (seen in the fault tests).
PRESSURE = (
    "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
    "replica_bytes=0, all_bytes=0, coordinating_operation_bytes={op}, "
    "max_coordinating_bytes=2097152]"
)
FLOOD = (
    "index [a-v1] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
    "watermark, index has read-only-allow-delete block]"
)


def _api_error(status: int, error: dict[str, Any] | None = None) -> ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=None,  # type: ignore[arg-type]
    )
    body: Any = {"error": error, "status": status} if error else "<html>gateway</html>"
    return ApiError(message=str(status), meta=meta, body=body)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("refused"),
        ConnectionTimeout("timed out"),
        _api_error(
            429, {"type": "es_rejected_execution_exception", "reason": PRESSURE.format(op=1000)}
        ),
        _api_error(429, {"type": "cluster_block_exception", "reason": FLOOD}),
        _api_error(401, {"type": "security_exception", "reason": "api key is expired"}),
        _api_error(
            403,
            {
                "type": "security_exception",
                "reason": "action [indices:data/write/bulk] is unauthorized",
            },
        ),
        _api_error(500),
        _api_error(502),
        _api_error(503),
        _api_error(504),
        _api_error(404, {"type": "index_not_found_exception", "reason": "no such index"}),
    ],
)
@pytest.mark.parametrize("entries", [1, 500])
def test_cluster_and_credential_faults_hold_however_small_the_request(
    exc: Exception, entries: int
) -> None:
    assert classify_request_error(exc, entries=entries, size=entries * 1000).verdict is Verdict.HOLD


def test_a_request_too_large_for_indexing_pressure_is_split_then_its_entry_rejected() -> None:
    exc = _api_error(
        429, {"type": "es_rejected_execution_exception", "reason": PRESSURE.format(op=3_200_000)}
    )
    assert classify_request_error(exc, entries=100, size=3_300_000).verdict is Verdict.SPLIT
    failure = classify_request_error(exc, entries=1, size=3_200_000)
    assert failure.verdict is Verdict.REJECT
    assert failure.status == 429
    assert "es_rejected_execution_exception" in failure.reason


@pytest.mark.parametrize("status", [400, 413])
def test_a_request_refused_for_its_content_is_narrowed_down(status: int) -> None:
    exc = _api_error(status, {"type": "parse_exception", "reason": "bad"})
    assert classify_request_error(exc, entries=8, size=8000).verdict is Verdict.SPLIT
    assert classify_request_error(exc, entries=1, size=3_200_000).verdict is Verdict.REJECT


# The cluster's own state, answered with a 400: never the document's fault.
CLOSED = {"type": "index_closed_exception", "reason": "closed", "index": "articles-v1"}
NO_WRITE_INDEX = {
    "type": "illegal_argument_exception",
    "reason": "no write index is defined for alias [articles]. The write index may be "
    "explicitly disabled using is_write_index=false or the alias points to multiple "
    "indices without one being designated as a write index",
}
SHARD_LIMIT = {
    "type": "validation_exception",
    "reason": "Validation Failed: 1: this action would add [2] shards, but this cluster "
    "currently has [1000]/[1000] maximum normal shards open;",
}


@pytest.mark.parametrize("error", [CLOSED, NO_WRITE_INDEX, SHARD_LIMIT])
def test_the_clusters_own_state_answered_with_a_400_is_held(error: dict[str, Any]) -> None:
    item = {"index": {"status": 400, "error": error}}
    assert classify_item(item).outcome is ItemOutcome.HOLD
    failure = classify_request_error(_api_error(400, error), entries=1, size=1000)
    assert failure.verdict is Verdict.HOLD


@pytest.mark.parametrize(
    "words",
    ["index_closed_exception", "no write index is defined for alias [a]", SHARD_LIMIT["reason"]],
)
def test_a_refusal_quoting_the_document_is_the_documents_whatever_it_says(words: str) -> None:
    # A refusal's reason can quote the document: these words in an id held the entry,
    # and the indexer behind it, for ever.
    quoted = {
        "type": "action_request_validation_exception",
        "reason": f"Validation Failed: 1: id [{words} {'p' * 600}] is too long, must be no "
        "longer than 512 bytes but was: 640;",
    }
    failure = classify_request_error(_api_error(400, quoted), entries=2, size=1000)
    assert failure.verdict is Verdict.SPLIT
    for error in (
        quoted,
        {"type": "illegal_argument_exception", "reason": f"field [tags] of {words}"},
        {"type": "validation_exception", "reason": f"Validation Failed: 1: {words}"},
        {"type": "mapper_parsing_exception", "reason": "failed", "caused_by": CLOSED},
    ):
        item = {"index": {"status": 400, "error": error}}
        assert classify_item(item).outcome is ItemOutcome.REJECTED


def test_a_400_elasticsearch_did_not_write_is_held_a_413_narrowed() -> None:
    # A proxy's page ("plain HTTP request was sent to HTTPS port"), no error object in it.
    proxy = classify_request_error(_api_error(400), entries=8, size=8000)
    assert proxy.verdict is Verdict.HOLD
    assert proxy.reason.startswith("not Elasticsearch's answer")
    # A size limit, Elasticsearch's or a proxy's: halves may pass, one entry never will.
    assert classify_request_error(_api_error(413), entries=8, size=8000).verdict is Verdict.SPLIT
    assert classify_request_error(_api_error(413), entries=1, size=8000).verdict is Verdict.REJECT


def test_a_success_the_client_refused_is_held() -> None:
    # What the client raises when the answer lacks Elasticsearch's product header.
    refused = UnsupportedProductError(
        message="The client noticed that the server is not Elasticsearch",
        meta=_api_error(200).meta,
        body="<html>a login page</html>",
    )
    assert classify_request_error(refused, entries=8, size=8000).verdict is Verdict.HOLD


def test_pressure_parsing() -> None:
    assert larger_than_the_cluster_takes(429, PRESSURE.format(op=2097153))
    assert not larger_than_the_cluster_takes(429, PRESSURE.format(op=2097152))
    assert not larger_than_the_cluster_takes(429, FLOOD)
    # The limit is named only in a 429; another status is never the pressure rule.
    assert not larger_than_the_cluster_takes(503, PRESSURE.format(op=2097153))
    assert larger_than_the_cluster_takes(
        429,
        "rejected execution of primary operation [primary_operation_bytes=9000, "
        "max_primary_bytes=100]",
    )


# An article of a 10 MiB body on an idle node of a 512 MiB heap (51 MiB of indexing
# pressure), as Elasticsearch 9.2 refused it again and again: the request's own 10.9 MB
# and the primary operation's 43.5 MB.
OWN_WEIGHT = (
    "rejected execution of primary operation [coordinating_and_primary_bytes=10886724, "
    "replica_bytes=0, all_bytes=10886724, primary_operation_bytes=43545904, "
    "max_primary_bytes=53687091]"
)


def test_a_primary_operation_over_the_limit_with_its_own_request_alone_is_too_heavy() -> None:
    assert too_heavy_with_its_request(429, OWN_WEIGHT, 10_886_900)
    # With 2 MB of another request in flight, but fitting beside its own request alone:
    # load, which passes (the writer's second request in flight is such).
    fits = OWN_WEIGHT.replace("all_bytes=10886724", "all_bytes=12500000")
    assert not too_heavy_with_its_request(429, fits.replace("43545904", "42000000"), 10_500_000)
    # Far less in flight than its own request: another node's load, not its weight.
    assert not too_heavy_with_its_request(429, OWN_WEIGHT, 20_000_000)
    # The coordinating stage counts other requests only besides this one's own bytes.
    coordinating = OWN_WEIGHT.replace("primary operation", "coordinating operation").replace(
        "primary_operation_bytes", "coordinating_operation_bytes"
    )
    assert not too_heavy_with_its_request(429, coordinating, 10_886_900)
    assert not too_heavy_with_its_request(503, OWN_WEIGHT, 10_886_900)


def test_a_document_too_heavy_for_its_request_is_held_to_be_narrowed() -> None:
    error = {"type": "es_rejected_execution_exception", "reason": OWN_WEIGHT}
    item = {"index": {"status": 429, "error": error}}
    heavy = classify_item(item, request_bytes=10_900_000)
    assert (heavy.outcome, heavy.narrow) == (ItemOutcome.HOLD, True)
    busy = classify_item(item, request_bytes=30_000_000)
    assert (busy.outcome, busy.narrow) == (ItemOutcome.HOLD, False)


@pytest.mark.parametrize(
    ("status", "error_type", "outcome"),
    [
        (429, "cluster_block_exception", ItemOutcome.HOLD),
        (403, "cluster_block_exception", ItemOutcome.HOLD),
        (403, "security_exception", ItemOutcome.HOLD),
        (401, "security_exception", ItemOutcome.HOLD),
        (404, "index_not_found_exception", ItemOutcome.HOLD),
        (503, "unavailable_shards_exception", ItemOutcome.HOLD),
        (400, "document_parsing_exception", ItemOutcome.REJECTED),
        (400, "illegal_argument_exception", ItemOutcome.REJECTED),
    ],
)
def test_item_outcomes_follow_the_policy(
    status: int, error_type: str, outcome: ItemOutcome
) -> None:
    item = {"index": {"status": status, "error": {"type": error_type, "reason": "r"}}}
    assert classify_item(item).outcome is outcome


def test_nothing_in_the_dead_letter_path_parses_a_hostile_payload() -> None:
    assert event_id_of(b"[" * 100_000) is None
    assert event_id_of(b"\xff\xfe\x00") is None
    assert (
        event_id_of(b'{"schema_version":1,"event_id":"3f1c7c1e-5b8a-4a59-9d1e-2a5f0c8b9e11"}')
        == "3f1c7c1e-5b8a-4a59-9d1e-2a5f0c8b9e11"
    )
    assert len(bounded("x" * 10_000_000)) < 5000
    assert bounded("short") == "short"


def test_notes_of_older_indexers_read_as_the_entrys_fault() -> None:
    assert read_note(b"mapper_parsing_exception: boom")[1] == "mapper_parsing_exception: boom"
    assert read_note(b'{"fault": "cluster", "reason": "429"}')[0].value == "cluster"


def test_a_note_no_indexer_wrote_reads_as_the_entrys_fault() -> None:
    # Nested past what the parser recurses: it stopped every batch holding its entry.
    fault, reason = read_note(b"[" * 100_000)
    assert (fault.value, reason[:3]) == ("entry", "[[[")


def test_a_request_near_the_pressure_limit_is_split_not_held_forever() -> None:
    # Elasticsearch reads a bulk body in chunks and counts the request's own earlier
    # chunks: a 2.1 MB request on an idle 2 MB node is refused on a 24 kB chunk.
    exc = _api_error(
        429,
        {
            "type": "es_rejected_execution_exception",
            "reason": (
                "rejected execution of coordinating operation [coordinating_and_primary_bytes="
                "2094960, replica_bytes=0, all_bytes=2094960, coordinating_operation_bytes=24080, "
                "max_coordinating_bytes=2097152]"
            ),
        },
    )
    assert classify_request_error(exc, entries=100, size=2_119_040).verdict is Verdict.SPLIT
    # A small request refused so is the cluster's load: held.
    assert classify_request_error(exc, entries=10, size=240_800).verdict is Verdict.HOLD
    assert classify_request_error(exc, entries=1, size=24_080).verdict is Verdict.HOLD


def test_a_refused_api_key_says_why_in_the_hold_reason() -> None:
    refused = {
        "type": "security_exception",
        "reason": "unable to authenticate with provided credentials",
        "additional_unsuccessful_credentials": "API key: api key [k1] has been invalidated",
    }
    assert describe_error(refused) == (
        "security_exception: unable to authenticate with provided credentials "
        "(API key: api key [k1] has been invalidated)"
    )


def test_a_letter_keeps_an_entry_byte_for_byte_up_to_its_bound_then_says_what_was_cut() -> None:
    small = {b"__data__": b"{}", b"trace": b"t"}
    assert kept_of(small, most=100) == (b"{}", {"trace": b"t"}, "")
    exactly = {b"__data__": b"x" * 100}  # the payload's own name is no part of the letter
    assert kept_of(exactly, most=100) == (b"x" * 100, {}, "")
    huge = {b"a": b"x" * 50, b"__data__": b"y" * 80, b"b": b"z" * 10}
    payload, others, cut = kept_of(huge, most=100)
    assert (payload, others) == (b"y" * 80, {"a": b"x" * 19})
    assert cut.startswith("the letter keeps the first 100 of the entry's 142 bytes;")
    assert cut.endswith(hashlib.sha256(b"y" * 80).hexdigest())
