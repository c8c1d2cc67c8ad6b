"""The published contracts say what is on the wire, and say it once."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.specs import JSON_SCHEMA_DIALECT, all_documents, event_schemas, schema_id
from shared.events import EVENT_MODELS, DeadLetter, QuoteEvent
from shared.settings import Settings
from tests.conftest import REPO


def _letter(payload: bytes) -> DeadLetter:
    return DeadLetter(
        stream="caravan:articles",
        entry_id="1732665600123-0",
        payload=payload,
        other_fields={"extra": b"\xfb\xff"},
        error_class="ValidationError",
        error_message="bad",
        service="indexer",
        attempts=1,
    )


def test_dead_letter_bytes_are_standard_base64() -> None:
    payload = bytes([0xFB, 0xFF, 0xBE, 0x01])  # "+/++AQ==": the characters where URL-safe differs
    wire = json.loads(_letter(payload).model_dump_json())
    assert wire["payload"] == base64.b64encode(payload).decode() == "+/++AQ=="
    assert wire["other_fields"] == {"extra": "+/8="}


def test_dead_letters_written_url_safe_before_still_read() -> None:
    wire = json.loads(_letter(b"").model_dump_json())
    wire["payload"] = "-_--AQ=="
    assert DeadLetter.model_validate(wire).payload == b"\xfb\xff\xbe\x01"
    assert DeadLetter.model_validate_json(json.dumps(wire)).payload == b"\xfb\xff\xbe\x01"


def test_dead_letter_payload_that_is_not_base64_is_refused() -> None:
    wire = json.loads(_letter(b"x").model_dump_json())
    wire["payload"] = "not base64!"
    with pytest.raises(ValueError, match="base64"):
        DeadLetter.model_validate_json(json.dumps(wire))


def test_trace_context_is_left_out_rather_than_null() -> None:
    quote = QuoteEvent(
        base="KZT",
        rate=Decimal("0.0021"),
        as_of=date(2024, 5, 2),
        provider="nbk",
        fetched_at=datetime(2024, 5, 2, tzinfo=UTC),
    )
    assert "traceparent" not in json.loads(quote.model_dump_json())
    traced = quote.model_copy(update={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    assert json.loads(traced.model_dump_json())["traceparent"].startswith("00-")


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_schemas_name_their_dialect_and_versioned_id(name: str) -> None:
    schema = event_schemas()[name]
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"] == schema_id(name)
    assert "/v1/" in schema["$id"]


@pytest.mark.parametrize("name", sorted(EVENT_MODELS))
def test_every_field_always_written_is_required(name: str) -> None:
    schema = event_schemas()[name]
    optional = set(schema["properties"]) - set(schema["required"])
    # An article that replaces another key says so; most replace none.
    own = {"supersedes"} if name == "ArticleEvent" else set()
    assert optional == {"traceparent", "tracestate", *own}
    assert {
        "schema_version",
        "event_id",
        "occurred_at",
        "idempotency_key",
        "version" if name != "DeadLetter" else "failed_at",
    } <= set(schema["required"])


def _asyncapi() -> dict[str, Any]:
    return {
        path: doc
        for path, doc in all_documents(Settings.from_env()).items()
        if path.startswith("asyncapi/")
    }


@pytest.mark.parametrize("path", sorted(_asyncapi()))
def test_asyncapi_references_the_published_schemas_instead_of_copying(path: str) -> None:
    document = _asyncapi()[path]
    assert "schemas" not in document["components"]
    messages = document["components"]["messages"].values()
    assert messages
    for message in messages:
        assert "correlationId" not in message  # FastStream's, never on the wire
        reference = message["payload"]["$ref"]
        assert (REPO / "docs" / "asyncapi" / reference).resolve().is_file()
        assert "`__data__`" in message["description"]
    for channel in document["channels"].values():
        assert channel["bindings"]["redis"]["field"] == "__data__"
