"""classify_item: what a bulk response item means for the indexer."""

from __future__ import annotations

from typing import Any

import pytest
from elastic_transport import SerializationError

from services.indexer.bulk import (
    ItemOutcome,
    ItemResult,
    classify_item,
    classify_response,
    multi_get_docs,
    still_published,
    superseding,
)
from services.indexer.documents import BulkAction, superseded_delete


def _item(status: int, error: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"_index": "articles-v1", "_id": "abc", "status": status, **extra}
    if error is not None:
        body["error"] = error
    return {"index": body}


def test_201_created_is_stored() -> None:
    result = classify_item(_item(201, result="created", _version=1700000000000))
    assert result == ItemResult(ItemOutcome.STORED, 201)
    assert result.done
    assert result.reason == ""


def test_200_updated_is_stored() -> None:
    result = classify_item(_item(200, result="updated"))
    assert result.outcome is ItemOutcome.STORED
    assert result.done


def test_409_version_conflict_is_stale_and_done() -> None:
    error = {
        "type": "version_conflict_engine_exception",
        "reason": "[abc]: version conflict, current version [2] is higher or equal to "
        "the one provided [1]",
        "index": "articles-v1",
        "shard": "0",
    }
    result = classify_item(_item(409, error))
    assert result.outcome is ItemOutcome.STALE
    assert result.status == 409
    assert result.done
    assert result.reason.startswith("version_conflict_engine_exception: [abc]: version conflict")


def test_429_is_held() -> None:
    error = {
        "type": "es_rejected_execution_exception",
        "reason": "rejected execution of coordinating operation",
    }
    result = classify_item(_item(429, error))
    assert result.outcome is ItemOutcome.HOLD
    assert not result.done
    assert "es_rejected_execution_exception" in result.reason


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_held(status: int) -> None:
    error = {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}
    result = classify_item(_item(status, error))
    assert result.outcome is ItemOutcome.HOLD
    assert result.status == status
    assert not result.done


def test_400_mapping_error_is_rejected_with_type_and_cause() -> None:
    error = {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [published_at] of type [date]",
        "caused_by": {
            "type": "illegal_argument_exception",
            "reason": "failed to parse date field [Seg, 24 Set 2018]",
        },
    }
    result = classify_item(_item(400, error))
    assert result.outcome is ItemOutcome.REJECTED
    assert result.status == 400
    assert not result.done
    assert "mapper_parsing_exception" in result.reason
    assert "failed to parse field [published_at]" in result.reason
    assert "illegal_argument_exception" in result.reason
    assert "failed to parse date field [Seg, 24 Set 2018]" in result.reason
    assert result.reason.index("mapper_parsing") < result.reason.index("caused by")


def test_nested_causes_are_all_reported() -> None:
    error = {
        "type": "a",
        "reason": "outer",
        "caused_by": {
            "type": "b",
            "reason": "middle",
            "caused_by": {"type": "c", "reason": "inner"},
        },
    }
    reason = classify_item(_item(400, error)).reason
    assert reason == "a: outer (caused by b: middle (caused by c: inner))"


def test_error_without_details_uses_the_status() -> None:
    assert classify_item(_item(503)).reason == "HTTP 503"
    assert classify_item({"create": {"_id": "x"}}).outcome is ItemOutcome.HOLD  # no status: 500


def test_other_action_types_are_read_the_same() -> None:
    assert classify_item({"create": {"status": 201}}).outcome is ItemOutcome.STORED


def test_classify_response_keeps_item_order() -> None:
    response = {
        "errors": True,
        "items": [
            _item(201),
            _item(409, {"type": "version_conflict_engine_exception", "reason": "r"}),
            _item(429, {"type": "es_rejected_execution_exception", "reason": "r"}),
            _item(400, {"type": "mapper_parsing_exception", "reason": "r"}),
        ],
    }
    assert [r.outcome for r in classify_response(response, 4)] == [
        ItemOutcome.STORED,
        ItemOutcome.STALE,
        ItemOutcome.HOLD,
        ItemOutcome.REJECTED,
    ]
    assert classify_response({"errors": False}, 0) == []


@pytest.mark.parametrize(
    "answer",
    [
        "<html>Service Unavailable</html>",  # a proxy's page, sent with a 200
        {"took": 3},  # no items
        {"errors": False, "items": [_item(201)]},  # fewer items than actions
        {"errors": False, "items": [_item(201), {"index": "ok"}]},  # not a result
    ],
)
def test_an_answer_that_is_not_the_bulk_answer_is_unreadable_not_an_error(answer: object) -> None:
    # Unreadable is held (failures.classify_request_error); a ValueError failed the batch
    # until its entries were dead-lettered for their deliveries.
    with pytest.raises(SerializationError):
        classify_response(answer, 2)


OLD_KEY, NEW_KEY = "a" * 32, "b" * 32


def _superseding(*superseded: str) -> BulkAction:
    """A document at version 1700 superseding `superseded`, each published at 1500."""
    published = tuple((key, 1500) for key in superseded)
    return BulkAction("articles", NEW_KEY, 1700, b'{"title":"t"}', supersedes=published)


def test_a_superseded_document_is_deleted_at_one_past_the_version_published_there() -> None:
    # Anything written there since stays (409); the older event it replaced, arriving
    # again, meets the delete's version.
    assert superseded_delete("articles", OLD_KEY, 1500) == {
        "delete": {
            "_index": "articles",
            "_id": OLD_KEY,
            "version": 1501,
            "version_type": "external",
        }
    }
    # Not in the request that stores the document: refused there while its delete went
    # through, the article was in neither place.
    assert b"delete" not in b"".join(_superseding(OLD_KEY).lines())


@pytest.mark.parametrize(
    ("found", "theirs"),
    [
        ({"found": True, "_version": 1500}, True),  # still the version published there
        ({"found": False}, True),  # nothing to lose; its tombstone refuses older copies
        # Another article's since (a page may declare its address), or this one's copy
        # never stored and another's older one still there: not this article's to take.
        ({"found": True, "_version": 2400}, False),
        ({"found": True, "_version": 900}, False),
        ({"error": {"type": "index_not_found_exception", "reason": "no such index"}}, None),
    ],
)
def test_only_the_version_published_there_is_the_articles_to_delete(
    found: dict[str, Any], theirs: bool | None
) -> None:
    assert still_published(found, 1500) is theirs


def _delete(status: int, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"delete": {"status": status} | ({"error": error} if error else {})}


def test_deleting_what_is_not_there_is_done_a_missing_index_is_held() -> None:
    assert classify_item(_delete(404)).done  # deleted before, or never indexed
    missing = {"type": "index_not_found_exception", "reason": "no such index [articles]"}
    assert classify_item(_delete(404, missing)).outcome is ItemOutcome.HOLD
    conflict = {"type": "version_conflict_engine_exception", "reason": "r"}
    assert classify_item(_delete(409, conflict)).outcome is ItemOutcome.STALE  # newer there


OVERLOADED = {"type": "es_rejected_execution_exception", "reason": "r"}


def test_only_a_document_done_has_its_superseded_ones_deleted() -> None:
    actions = [
        _superseding(OLD_KEY),  # stored
        _superseding(OLD_KEY),  # a newer one there
        _superseding(OLD_KEY),  # held
        _superseding(OLD_KEY),  # refused
        BulkAction("articles", OLD_KEY, 1, b"{}"),  # supersedes nothing
    ]
    answer = {
        "items": [
            _item(201),
            _item(409, {"type": "version_conflict_engine_exception", "reason": "r"}),
            _item(429, OVERLOADED),
            _item(400, {"type": "mapper_parsing_exception", "reason": "r"}),
            _item(201),
        ]
    }
    assert superseding(actions, classify_response(answer, 5)) == [0, 1]


@pytest.mark.parametrize(
    "answer",
    [
        {"message": "down for maintenance"},
        {"docs": [{"found": False}]},
        {"docs": ["x", "y"]},
        "<html>",
    ],
)
def test_an_answer_that_is_not_the_multi_get_is_unreadable_not_an_error(answer: object) -> None:
    # A proxy's page sent with a 200, or an answer cut short: raised as anything else,
    # the stored batch was neither acknowledged nor matched (helper-116).
    with pytest.raises(SerializationError):
        multi_get_docs(answer, 2)
